/* Synthetic label-feature datasets (`xmc synth`); the model is documented in
 * include/xmc/synth.h and docs/synth.md.
 *
 * Nothing O(N) or O(L) is materialised: every label's rank, cluster and text
 * are pure functions of (seed, label id) via hashing, and every point is a
 * pure function of (seed, point index) via its own xmc_rng stream. So the
 * generator streams, and any thread may produce any point.
 *
 * Passes:
 *   1. document frequencies df[w] over the TRAINING points (atomic adds into
 *      one F-sized array; the final counts do not depend on the order);
 *   2. points in batches: each thread formats a contiguous slice of the batch
 *      into its own buffers, then the buffers are written in slice order, so
 *      the files are identical whatever the thread count;
 *   3. label texts (Y.txt), batched the same way.
 * Memory: df + idf (8 bytes per feature) + per-thread buffers of one batch.
 *
 * Label ranks <-> ids: id = (a r + b) mod L with gcd(a, L) = 1 (a bijection
 * whose inverse needs a^-1 mod L), so popular labels are spread over the id
 * range without storing a permutation.
 *
 * Popularity: Zipf-Mandelbrot by inverse transform of the continuous density
 * x^-s on [q, L + q), rank = floor(x - q): O(1) per draw, no O(L) table.
 * P(rank r) = int_{r+q}^{r+q+1} x^-s dx ~ (r + q + 1/2)^-s.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmc/synth.h"

#define ZIPF_Q 3.0          /* Mandelbrot offset of label popularity */
#define P_COOCCUR 0.5       /* other labels: from the anchor's cluster */
#define N_TOPIC_WORDS 2     /* topic words per cluster */
#define P_SPEC_WORD 0.6     /* a label's own word appears in its point's text */
#define P_SPEC_REPEAT 0.3   /* ... twice */
#define P_CONFUSE 0.3       /* ... replaced by a word of a sibling label (same cluster) */
#define P_TOPIC_WORD 0.5    /* a cluster topic word appears */
#define NOISE_MIN 4         /* noise words: NOISE_MIN + Poisson(NOISE_MEAN) */
#define NOISE_MEAN 8.0
#define MAX_LABELS_PER_POINT 64
#define MAX_NOISE 64
#define MAX_WORDS (MAX_LABELS_PER_POINT * (3 * 2 + N_TOPIC_WORDS) + NOISE_MIN + MAX_NOISE)
#define MAX_WORD_CHARS 16   /* 5 syllables of at most 3 chars, + NUL */
#define BATCH 16384

enum { T_TOPIC = 1, T_NSPEC, T_SPEC, T_TOPICSEL, T_CONNECT, T_PERM };

static const char *const ONSETS[20] = {"b", "d", "f", "g", "h", "k", "l", "m", "n", "p",
                                       "r", "s", "t", "v", "z", "ch", "sh", "th", "br", "tr"};
static const char VOWELS[5] = {'a', 'e', 'i', 'o', 'u'};

typedef struct model {
    uint64_t seed;
    int64_t N, n_trn, n_tst, L, V, Vc;
    int S;
    double s, mean_labels;
    uint64_t pa, pb, pa_inv; /* id = (pa r + pb) mod L */
    double lz_lo, lz_span;   /* label Zipf inverse-transform constants */
    double wz_lo, wz_span;   /* word Zipf */
    unsigned char syl[5][100]; /* per-position syllable permutation */
    uint32_t *df;  /* (V) */
    float *idf;    /* (V) */
} model;

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t h3(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b)
{
    return mix64(mix64(mix64(seed + 0x9e3779b97f4a7c15ULL * tag) ^ a) + b);
}

/* ------------------------------------------------------------ samplers */

/* Continuous x^-s on [q, n + q): constants for inverse-transform sampling. */
static void zipf_init(double n, double q, double s, double *lo, double *span)
{
    if (fabs(s - 1.0) < 1e-9) {
        *lo = log(q);
        *span = log(n + q) - log(q);
    } else {
        *lo = pow(q, 1.0 - s);
        *span = pow(n + q, 1.0 - s) - *lo;
    }
}

static inline int64_t zipf_draw(xmc_rng *r, int64_t n, double q, double s, double lo, double span)
{
    double u = xmc_rng_uniform(r), x;
    if (fabs(s - 1.0) < 1e-9)
        x = exp(lo + u * span);
    else
        x = pow(lo + u * span, 1.0 / (1.0 - s));
    int64_t k = (int64_t)(x - q);
    return k < 0 ? 0 : k >= n ? n - 1 : k;
}

/* Knuth's multiplication method: O(lambda), fine for lambda <= 30. */
static int poisson(xmc_rng *r, double lambda, int cap)
{
    if (lambda <= 0)
        return 0;
    double lim = exp(-lambda), p = 1.0;
    int k = 0;
    for (;;) {
        p *= xmc_rng_uniform(r);
        if (p <= lim || k >= cap)
            return k;
        k++;
    }
}

/* ------------------------------------------------------------ labels */

static inline int64_t label_id(const model *m, int64_t rank)
{
    return (int64_t)(((unsigned __int128)m->pa * (uint64_t)rank + m->pb) % (uint64_t)m->L);
}

static inline int64_t label_rank(const model *m, int64_t id)
{
    uint64_t L = (uint64_t)m->L;
    uint64_t d = ((uint64_t)id + L - m->pb % L) % L;
    return (int64_t)(((unsigned __int128)m->pa_inv * d) % L);
}

static inline int64_t label_cluster(const model *m, int64_t id) { return label_rank(m, id) / m->S; }

static inline int64_t topic_word(const model *m, int64_t cluster, int j)
{
    return m->Vc + (int64_t)(h3(m->seed, T_TOPIC, (uint64_t)cluster, (uint64_t)j) %
                             (uint64_t)(m->V - m->Vc));
}

static inline int label_n_spec(const model *m, int64_t id)
{
    return 1 + (int)(h3(m->seed, T_NSPEC, (uint64_t)id, 0) % 3);
}

static inline int64_t spec_word(const model *m, int64_t id, int j)
{
    return m->Vc +
           (int64_t)(h3(m->seed, T_SPEC, (uint64_t)id, (uint64_t)j) % (uint64_t)(m->V - m->Vc));
}

/* Modular inverse of a mod n (gcd(a, n) = 1), extended Euclid. */
static uint64_t mod_inverse(uint64_t a, uint64_t n)
{
    if (n == 1)
        return 0;
    __int128 t = 0, nt = 1, r = (__int128)n, nr = (__int128)(a % n);
    while (nr != 0) {
        __int128 q = r / nr, tmp = t - q * nt;
        t = nt;
        nt = tmp;
        tmp = r - q * nr;
        r = nr;
        nr = tmp;
    }
    if (t < 0)
        t += (__int128)n;
    return (uint64_t)t;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* ------------------------------------------------------------ words */

/* Word w as pronounceable syllables: its base-100 digits, each through a
 * seeded permutation of the 100 onset+vowel syllables. Every syllable ends in
 * a vowel and only there, so a string splits back into syllables one way:
 * distinct ids give distinct words. Low ids (the frequent ones) are short. */
static int word_str(const model *m, int64_t w, char *out)
{
    int ns = w < 10000 ? 2 : w < 1000000 ? 3 : w < 100000000 ? 4 : 5;
    int n = 0;
    for (int j = 0; j < ns; j++) {
        int d = (int)(w % 100);
        w /= 100;
        int syl = m->syl[j][d];
        const char *o = ONSETS[syl / 5];
        while (*o)
            out[n++] = *o++;
        out[n++] = VOWELS[syl % 5];
    }
    out[n] = '\0';
    return n;
}

/* ------------------------------------------------------------ points */

typedef struct point {
    int n_labels, n_words;
    int32_t labels[MAX_LABELS_PER_POINT]; /* sorted ids */
    int32_t words[MAX_WORDS];             /* word ids, text order */
} point;

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static inline void add_word(point *p, int64_t w)
{
    if (p->n_words < MAX_WORDS)
        p->words[p->n_words++] = (int32_t)w;
}

/* Point i, a pure function of (seed, i). */
static void gen_point(const model *m, int64_t i, point *p)
{
    xmc_rng r;
    xmc_rng_seed(&r, m->seed, (uint64_t)i);
    int want = 1 + poisson(&r, m->mean_labels - 1.0, MAX_LABELS_PER_POINT - 1);
    if (want > m->L)
        want = (int)m->L;
    p->n_labels = 0;
    p->n_words = 0;
    int64_t anchor = zipf_draw(&r, m->L, ZIPF_Q, m->s, m->lz_lo, m->lz_span);
    p->labels[p->n_labels++] = (int32_t)label_id(m, anchor);
    int64_t c0 = (anchor / m->S) * m->S;
    int64_t csize = m->L - c0 < m->S ? m->L - c0 : m->S;
    for (int tries = 0; p->n_labels < want && tries < 8 * want; tries++) {
        int64_t rank;
        if (xmc_rng_uniform(&r) < P_COOCCUR)
            rank = c0 + (int64_t)xmc_rng_below(&r, (uint64_t)csize);
        else
            rank = zipf_draw(&r, m->L, ZIPF_Q, m->s, m->lz_lo, m->lz_span);
        int32_t id = (int32_t)label_id(m, rank);
        int dup = 0;
        for (int j = 0; j < p->n_labels; j++)
            dup |= p->labels[j] == id;
        if (!dup)
            p->labels[p->n_labels++] = id;
    }
    qsort(p->labels, (size_t)p->n_labels, sizeof p->labels[0], cmp_i32);

    for (int j = 0; j < p->n_labels; j++) {
        int64_t id = p->labels[j];
        int ns = label_n_spec(m, id);
        int64_t c = label_cluster(m, id);
        for (int k = 0; k < ns; k++) {
            if (xmc_rng_uniform(&r) < P_SPEC_WORD) {
                int64_t w = spec_word(m, id, k);
                if (xmc_rng_uniform(&r) < P_CONFUSE) {
                    /* Related labels share vocabulary: a sibling's word. */
                    int64_t s0 = c * m->S, cs = m->L - s0 < m->S ? m->L - s0 : m->S;
                    int64_t sib = label_id(m, s0 + (int64_t)xmc_rng_below(&r, (uint64_t)cs));
                    w = spec_word(m, sib, k % label_n_spec(m, sib));
                }
                add_word(p, w);
                if (xmc_rng_uniform(&r) < P_SPEC_REPEAT)
                    add_word(p, w);
            }
        }
        for (int k = 0; k < N_TOPIC_WORDS; k++)
            if (xmc_rng_uniform(&r) < P_TOPIC_WORD)
                add_word(p, topic_word(m, c, k));
    }
    int n_noise = NOISE_MIN + poisson(&r, NOISE_MEAN, MAX_NOISE);
    for (int k = 0; k < n_noise; k++)
        add_word(p, zipf_draw(&r, m->V, 1.0, 1.0, m->wz_lo, m->wz_span));
    for (int k = p->n_words - 1; k > 0; k--) { /* Fisher-Yates: text order */
        int j = (int)xmc_rng_below(&r, (uint64_t)k + 1);
        int32_t t = p->words[k];
        p->words[k] = p->words[j];
        p->words[j] = t;
    }
}

/* ------------------------------------------------------------ buffers */

typedef struct buf {
    char *p;
    size_t n, cap;
    int failed;
} buf;

static char *buf_reserve(buf *b, size_t extra)
{
    if (b->failed)
        return NULL;
    if (b->n + extra > b->cap) {
        size_t nc = b->cap ? b->cap : 1 << 16;
        while (nc < b->n + extra)
            nc *= 2;
        char *np = xmc_realloc(b->p, nc);
        if (!np) {
            b->failed = 1;
            return NULL;
        }
        b->p = np;
        b->cap = nc;
    }
    return b->p + b->n;
}

typedef struct tbufs {
    buf xy, x, xf;
    point pt;
    int32_t sorted[MAX_WORDS];
} tbufs;

static int fmt_int(char *o, int64_t v)
{
    char t[24];
    int n = 0, k = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        o[k++] = t[--n];
    return k;
}

/* Format point i into the thread's buffers: one line in each file. */
static void format_point(const model *m, int64_t i, tbufs *t)
{
    point *p = &t->pt;
    gen_point(m, i, p);
    /* labels */
    char *o = buf_reserve(&t->xy, (size_t)p->n_labels * 14 + 2);
    if (o) {
        size_t k = 0;
        for (int j = 0; j < p->n_labels; j++) {
            if (j)
                o[k++] = ' ';
            k += (size_t)fmt_int(o + k, p->labels[j]);
            o[k++] = ':';
            o[k++] = '1';
        }
        o[k++] = '\n';
        t->xy.n += k;
    }
    /* text */
    o = buf_reserve(&t->x, (size_t)p->n_words * MAX_WORD_CHARS + 2);
    if (o) {
        size_t k = 0;
        for (int j = 0; j < p->n_words; j++) {
            if (j)
                o[k++] = ' ';
            k += (size_t)word_str(m, p->words[j], o + k);
        }
        o[k++] = '\n';
        t->x.n += k;
    }
    /* tf-idf: (1 + ln tf) * idf, L2-normalised, sorted ids */
    memcpy(t->sorted, p->words, (size_t)p->n_words * sizeof p->words[0]);
    qsort(t->sorted, (size_t)p->n_words, sizeof t->sorted[0], cmp_i32);
    double val[MAX_WORDS];
    int32_t ids[MAX_WORDS];
    int nu = 0;
    double norm = 0;
    for (int j = 0; j < p->n_words;) {
        int e = j;
        while (e < p->n_words && t->sorted[e] == t->sorted[j])
            e++;
        double v = (1.0 + log((double)(e - j))) * m->idf[t->sorted[j]];
        ids[nu] = t->sorted[j];
        val[nu++] = v;
        norm += v * v;
        j = e;
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0.0;
    o = buf_reserve(&t->xf, (size_t)nu * 32 + 2);
    if (o) {
        size_t k = 0;
        for (int j = 0; j < nu; j++) {
            if (j)
                o[k++] = ' ';
            k += (size_t)fmt_int(o + k, ids[j]);
            o[k++] = ':';
            k += (size_t)snprintf(o + k, 24, "%.5g", val[j] * norm);
        }
        o[k++] = '\n';
        t->xf.n += k;
    }
}

/* Label l's text: a topic word of its cluster, optionally a short connecting
 * word, then its 1-3 own words: 2 to 5 words. */
static void format_label(const model *m, int64_t id, buf *b)
{
    char *o = buf_reserve(b, 6 * MAX_WORD_CHARS + 2);
    if (!o)
        return;
    int64_t c = label_cluster(m, id);
    int which = (int)(h3(m->seed, T_TOPICSEL, (uint64_t)id, 0) % N_TOPIC_WORDS);
    size_t k = (size_t)word_str(m, topic_word(m, c, which), o);
    uint64_t hc = h3(m->seed, T_CONNECT, (uint64_t)id, 0);
    if (hc % 3 == 0) {
        o[k++] = ' ';
        k += (size_t)word_str(m, (int64_t)((hc >> 8) % 10), o + k);
    }
    int ns = label_n_spec(m, id);
    for (int j = 0; j < ns; j++) {
        o[k++] = ' ';
        k += (size_t)word_str(m, spec_word(m, id, j), o + k);
    }
    o[k++] = '\n';
    b->n += k;
}

/* ------------------------------------------------------------ driver */

void xmc_synth_config_default(xmc_synth_config *c)
{
    memset(c, 0, sizeof *c);
    c->n_points = XMC_SYNTH_DEFAULT_POINTS;
    c->n_labels = XMC_SYNTH_DEFAULT_LABELS;
    c->test_frac = XMC_SYNTH_DEFAULT_TEST_FRAC;
    c->zipf = XMC_SYNTH_DEFAULT_ZIPF;
    c->mean_labels = XMC_SYNTH_DEFAULT_MEAN_LABELS;
    c->cluster_size = XMC_SYNTH_DEFAULT_CLUSTER;
}

static int write_all(xmc_outfile *o, const buf *b, uint64_t *bytes, xmc_error *err)
{
    if (b->n && fwrite(b->p, 1, b->n, o->fp) != b->n)
        return XMC_ERR(err, XMC_EIO, o->path, 0, "write failed");
    *bytes += b->n;
    return XMC_OK;
}

enum { F_TRN_XY, F_TST_XY, F_TRN_X, F_TST_X, F_TRN_XF, F_TST_XF, F_Y, F_COUNT };
static const char *const FILE_NAMES[F_COUNT] = {"trn_X_Y.txt",  "tst_X_Y.txt",  "trn_X.txt",
                                                "tst_X.txt",    "trn_X_Xf.txt", "tst_X_Xf.txt",
                                                "Y.txt"};

int xmc_synth_write(const xmc_synth_config *c, const char *dir, xmc_synth_stats *stats,
                    xmc_error *err)
{
    int rc = XMC_OK;
    model m;
    xmc_outfile of[F_COUNT];
    tbufs *tb = NULL;
    int n_threads = 0;
    char *path = NULL;
    xmc_synth_stats st;
    double t0 = xmc_now();

    memset(&m, 0, sizeof m);
    memset(of, 0, sizeof of);
    memset(&st, 0, sizeof st);
    if (stats)
        memset(stats, 0, sizeof *stats);
    /* Validate before any work. */
    if (!c || !dir || !*dir)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "synth: no output directory");
    if (c->n_points < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "synth: --points must be >= 1, got %lld",
                       (long long)c->n_points);
    if (c->n_labels < 1 || c->n_labels > XMC_SYNTH_MAX_LABELS)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "synth: --labels must be in [1, %lld], got %lld",
                       (long long)XMC_SYNTH_MAX_LABELS, (long long)c->n_labels);
    if (c->n_features != 0 &&
        (c->n_features < XMC_SYNTH_MIN_FEATURES || c->n_features > XMC_SYNTH_MAX_FEATURES))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "synth: --features must be in [%d, %lld] (or 0 for the default), got %lld",
                       XMC_SYNTH_MIN_FEATURES, (long long)XMC_SYNTH_MAX_FEATURES,
                       (long long)c->n_features);
    if (!(c->test_frac >= 0 && c->test_frac < 1))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "synth: --test-frac must be in [0, 1), got %g",
                       c->test_frac);
    if (!(c->zipf >= XMC_SYNTH_MIN_ZIPF && c->zipf <= XMC_SYNTH_MAX_ZIPF))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "synth: --zipf must be in [%g, %g], got %g",
                       XMC_SYNTH_MIN_ZIPF, XMC_SYNTH_MAX_ZIPF, c->zipf);
    if (!(c->mean_labels >= XMC_SYNTH_MIN_MEAN_LABELS &&
          c->mean_labels <= XMC_SYNTH_MAX_MEAN_LABELS))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "synth: mean labels per point must be in [%g, %g], got %g",
                       XMC_SYNTH_MIN_MEAN_LABELS, XMC_SYNTH_MAX_MEAN_LABELS, c->mean_labels);
    if (c->cluster_size < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "synth: cluster size must be >= 1, got %d",
                       c->cluster_size);

    m.seed = c->seed;
    m.N = c->n_points;
    m.n_tst = (int64_t)floor((double)c->n_points * c->test_frac + 0.5);
    if (m.n_tst >= m.N) /* keep at least one training point (idf, propensities) */
        m.n_tst = m.N - 1;
    m.n_trn = m.N - m.n_tst;
    m.L = c->n_labels;
    m.V = c->n_features;
    if (m.V == 0) {
        m.V = m.L + 5000;
        if (m.V > (1 << 20))
            m.V = 1 << 20;
    }
    m.Vc = m.V / 20 > 20 ? m.V / 20 : 20;
    m.S = c->cluster_size;
    m.s = c->zipf;
    m.mean_labels = c->mean_labels;
    {
        uint64_t L = (uint64_t)m.L;
        uint64_t a = L > 1 ? (h3(m.seed, T_PERM, 1, 0) % L) | 1 : 1;
        while (L > 1 && gcd_u64(a, L) != 1)
            a = (a + 2) % L ? (a + 2) % L : 1;
        m.pa = a % (L ? L : 1);
        m.pb = L > 1 ? h3(m.seed, T_PERM, 2, 0) % L : 0;
        m.pa_inv = mod_inverse(m.pa, L);
        if (L == 1)
            m.pa = 1;
    }
    zipf_init((double)m.L, ZIPF_Q, m.s, &m.lz_lo, &m.lz_span);
    zipf_init((double)m.V, 1.0, 1.0, &m.wz_lo, &m.wz_span);
    {
        xmc_rng r;
        xmc_rng_seed(&r, m.seed, UINT64_MAX); /* a stream no point uses */
        for (int j = 0; j < 5; j++) {
            for (int d = 0; d < 100; d++)
                m.syl[j][d] = (unsigned char)d;
            for (int d = 99; d > 0; d--) {
                int e = (int)xmc_rng_below(&r, (uint64_t)d + 1);
                unsigned char t = m.syl[j][d];
                m.syl[j][d] = m.syl[j][e];
                m.syl[j][e] = t;
            }
        }
    }

    rc = xmc_mkdir_p(dir, err);
    if (rc)
        return rc;
    m.df = xmc_calloc((size_t)m.V, sizeof *m.df);
    m.idf = xmc_malloc((size_t)m.V * sizeof *m.idf);
    n_threads = omp_get_max_threads();
    tb = xmc_calloc((size_t)n_threads, sizeof *tb);
    path = xmc_malloc(strlen(dir) + 32);
    if (!m.df || !m.idf || !tb || !path) {
        rc = XMC_ERR(err, XMC_ENOMEM, dir, 0, "synth: out of memory (F=%lld)", (long long)m.V);
        goto done;
    }
    for (int f = 0; f < F_COUNT; f++) {
        sprintf(path, "%s/%s", dir, FILE_NAMES[f]);
        rc = xmc_outfile_open(&of[f], path, err);
        if (rc)
            goto done;
    }

    /* Pass 1: document frequencies over the training points. */
    xmc_progress pg;
    xmc_progress_start(&pg, "synth: word counts", "points", m.n_trn);
    for (int64_t b0 = 0; b0 < m.n_trn; b0 += BATCH) {
        int64_t b1 = b0 + BATCH < m.n_trn ? b0 + BATCH : m.n_trn;
#pragma omp parallel for schedule(static) num_threads(n_threads)
        for (int64_t i = b0; i < b1; i++) {
            tbufs *t = &tb[omp_get_thread_num()];
            point *p = &t->pt;
            gen_point(&m, i, p);
            memcpy(t->sorted, p->words, (size_t)p->n_words * sizeof p->words[0]);
            qsort(t->sorted, (size_t)p->n_words, sizeof t->sorted[0], cmp_i32);
            for (int j = 0; j < p->n_words; j++)
                if (j == 0 || t->sorted[j] != t->sorted[j - 1])
                    __atomic_fetch_add(&m.df[t->sorted[j]], 1u, __ATOMIC_RELAXED);
        }
        xmc_progress_update(&pg, b1, NULL);
    }
    xmc_progress_finish(&pg, NULL);
    /* Smoothed idf (as scikit-learn's TfidfVectorizer): ln((1+N)/(1+df)) + 1. */
    for (int64_t w = 0; w < m.V; w++)
        m.idf[w] = (float)(log((1.0 + (double)m.n_trn) / (1.0 + (double)m.df[w])) + 1.0);

    /* Pass 2: the point files. */
    for (int split = 0; split < 2; split++) {
        int64_t lo = split ? m.n_trn : 0, hi = split ? m.N : m.n_trn;
        xmc_outfile *fxy = &of[split ? F_TST_XY : F_TRN_XY];
        xmc_outfile *fx = &of[split ? F_TST_X : F_TRN_X];
        xmc_outfile *fxf = &of[split ? F_TST_XF : F_TRN_XF];
        int h1 = fprintf(fxy->fp, "%lld %lld\n", (long long)(hi - lo), (long long)m.L);
        int h2 = fprintf(fxf->fp, "%lld %lld\n", (long long)(hi - lo), (long long)m.V);
        if (h1 < 0 || h2 < 0) {
            rc = XMC_ERR(err, XMC_EIO, fxy->path, 0, "write failed");
            goto done;
        }
        st.bytes += (uint64_t)h1 + (uint64_t)h2;
        xmc_progress_start(&pg, split ? "synth: test points" : "synth: train points", "points",
                           hi - lo);
        for (int64_t b0 = lo; b0 < hi; b0 += BATCH) {
            int64_t b1 = b0 + BATCH < hi ? b0 + BATCH : hi;
            int64_t pairs = 0, words = 0;
#pragma omp parallel num_threads(n_threads) reduction(+ : pairs, words)
            {
                int t = omp_get_thread_num(), nt = omp_get_num_threads();
                tbufs *tbt = &tb[t];
                tbt->xy.n = tbt->x.n = tbt->xf.n = 0;
                /* Contiguous slices: thread t owns [s0, s1), written in t order. */
                int64_t s0 = b0 + (b1 - b0) * t / nt, s1 = b0 + (b1 - b0) * (t + 1) / nt;
                for (int64_t i = s0; i < s1; i++) {
                    format_point(&m, i, tbt);
                    pairs += tbt->pt.n_labels;
                    words += tbt->pt.n_words;
                }
            }
            for (int t = 0; t < n_threads; t++) {
                if (tb[t].xy.failed || tb[t].x.failed || tb[t].xf.failed) {
                    rc = XMC_ERR(err, XMC_ENOMEM, dir, 0, "synth: out of memory for a batch");
                    goto done;
                }
                if ((rc = write_all(fxy, &tb[t].xy, &st.bytes, err)) ||
                    (rc = write_all(fx, &tb[t].x, &st.bytes, err)) ||
                    (rc = write_all(fxf, &tb[t].xf, &st.bytes, err)))
                    goto done;
                tb[t].xy.n = tb[t].x.n = tb[t].xf.n = 0;
            }
            if (split) {
                st.test_pairs += pairs;
            } else {
                st.train_pairs += pairs;
                st.train_words += words;
            }
            xmc_progress_update(&pg, b1 - lo, NULL);
        }
        xmc_progress_finish(&pg, NULL);
    }

    /* Pass 3: label texts. */
    xmc_progress_start(&pg, "synth: label texts", "labels", m.L);
    for (int64_t b0 = 0; b0 < m.L; b0 += BATCH * 4) {
        int64_t b1 = b0 + BATCH * 4 < m.L ? b0 + BATCH * 4 : m.L;
#pragma omp parallel num_threads(n_threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            tb[t].x.n = 0;
            int64_t s0 = b0 + (b1 - b0) * t / nt, s1 = b0 + (b1 - b0) * (t + 1) / nt;
            for (int64_t l = s0; l < s1; l++)
                format_label(&m, l, &tb[t].x);
        }
        for (int t = 0; t < n_threads; t++) {
            if (tb[t].x.failed) {
                rc = XMC_ERR(err, XMC_ENOMEM, dir, 0, "synth: out of memory for a batch");
                goto done;
            }
            if ((rc = write_all(&of[F_Y], &tb[t].x, &st.bytes, err)))
                goto done;
            tb[t].x.n = 0;
        }
        xmc_progress_update(&pg, b1, NULL);
    }
    xmc_progress_finish(&pg, NULL);

    for (int f = 0; f < F_COUNT; f++) {
        rc = xmc_outfile_commit(&of[f], err);
        if (rc)
            goto done;
    }
    st.n_train = m.n_trn;
    st.n_test = m.n_tst;
    st.n_features = m.V;
    st.seconds = xmc_now() - t0;
    if (stats)
        *stats = st;

done:
    for (int f = 0; f < F_COUNT; f++)
        xmc_outfile_abort(&of[f]); /* no-op after commit */
    if (tb)
        for (int t = 0; t < n_threads; t++) {
            xmc_free(tb[t].xy.p);
            xmc_free(tb[t].x.p);
            xmc_free(tb[t].xf.p);
        }
    xmc_free(tb);
    xmc_free(path);
    xmc_free(m.df);
    xmc_free(m.idf);
    return rc;
}
