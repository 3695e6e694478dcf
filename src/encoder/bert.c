/* BERT / MiniLM / DistilBERT encoder: parameters, config, loading, forward,
 * backward, AdamW (see include/xmc/bert.h for the model equations).
 *
 * Memory (llm.c layout): params, grads, m, v are four flat buffers of
 * n_params floats; `tensors` maps each HF tensor to an offset. Activations
 * are carved from one allocation at create, sized for (max_batch, max_len):
 * when training every layer keeps x, qkv, P, attention output, r1, h1, the
 * FFN pre-activation f, r2 and the LayerNorm statistics (the GELU output is
 * recomputed in backward instead of stored: it is the largest tensor and
 * costs one cheap pass); for inference all layers share one set, and with
 * opts.recompute training shares it too, keeping only each layer's input
 * and re-running the layer (same step, same dropout masks) in backward.
 * Sequence rows are packed with stride T = max(lens) of the batch, so short
 * batches cost less.
 *
 * Threading: every operation of the forward is row-wise or per sequence,
 * so the forward is ONE OpenMP loop over chunks of ~128 rows (whole
 * sequences), each running the full network with single-threaded GEMMs
 * (OpenBLAS detects the parallel region): no barrier between operations,
 * which matters on a loaded machine where a barrier waits for a descheduled
 * thread. Backward does the same per layer for the input-gradient chain,
 * then the weight gradients (sums over all rows) as one loop over 64-row
 * blocks of the four weight matrices, again single-threaded GEMMs.
 * Per-thread scratch (dropped-out P, dP) is sized from
 * omp_get_max_threads() at create; the loops cap their team to that.
 * Chunking depends on T only, so results do not depend on the thread
 * count (OpenBLAS's own blocking aside).
 */
#include "xmc/bert.h"
#include "core/internal.h"

#if defined(__clang__)
/* `omp simd` is a request: under sanitizers clang declines some loops and
 * says so per loop; the code is correct either way. */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "xmc/kernels.h"
#include "xmc/safetensors.h"

/* cblas.h pulls in <complex.h>, whose macro I would shadow our intermediate size */
#undef I

typedef struct layer_p {
    float *qkvw; /* (3H, H): query, key, value weights stacked */
    float *qkvb; /* (3H) */
    float *ow, *ob;     /* (H, H), (H) attention output */
    float *ln1w, *ln1b; /* (H) */
    float *fw, *fb;     /* (I, H), (I) */
    float *f2w, *f2b;   /* (H, I), (H) */
    float *ln2w, *ln2b; /* (H) */
} layer_p;

typedef struct emb_p {
    float *wte;  /* (V, H) */
    float *wpe;  /* (P, H) */
    float *wtt;  /* (TV, H) or NULL */
    float *lnw, *lnb;
} emb_p;

typedef struct layer_a {
    float *x;      /* (BT, H) input */
    float *qkv;    /* (BT, 3H) */
    float *att;    /* (B, NH, T, T) softmax probabilities */
    float *atty;   /* (BT, H) heads concatenated */
    float *r1;     /* (BT, H) x + attention output: LN1 input */
    float *m1, *s1; /* (BT) LN1 mean, rstd */
    float *h1;     /* (BT, H) */
    float *f;      /* (BT, I) FFN pre-activation */
    float *r2;     /* (BT, H) LN2 input */
    float *m2, *s2;
} layer_a;

struct xmc_bert {
    xmc_bert_config c;
    xmc_bert_opts o;
    xmc_bert_tensor *tensors;
    int n_tensors;
    int64_t n_params;
    float *params, *grads, *am, *av;
    int ext_params, ext_grads; /* buffers belong to the caller (bind_buffers) */
    emb_p E, GE;
    layer_p *P, *G; /* (L) params / grads pointers */
    /* activations */
    float *act_mem;
    size_t act_floats;
    float *emb, *em, *es; /* (BT, H) embedding sum; LN_e stats (BT) */
    float **xs;           /* (L + 1) layer inputs; xs[L] = output */
    layer_a *A;
    float *gbuf;          /* (BT, I) GELU output */
    /* backward scratch */
    float *d1, *d2, *d3, *d4, *d5, *dx, *datty, *dqkv, *dI, *red;
    float *part;          /* (max chunks, 4H) LayerNorm grad partial sums */
    float *cred;          /* (max chunks, cred_stride) LayerNorm scratch */
    int64_t cred_stride;
    float *tP, *tdP; /* (nthr, Tmax, Tmax) per-thread */
    int nthr;
    /* the last forward */
    int B, T, last_train;
    int32_t *ids, *lens; /* copies (B, T), (B) */
    uint64_t step;
    float p_hidden, p_attn;
};

void xmc_bert_opts_default(xmc_bert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_batch = 32;
    o->max_len = XMC_BERT_DEFAULT_MAX_LEN;
    o->pooling = XMC_BERT_POOL_MEAN;
    o->hidden_dropout = -1.0f;
    o->attn_dropout = -1.0f;
    o->seed = 1;
}

const xmc_bert_config *xmc_bert_get_config(const xmc_bert *m) { return &m->c; }
const xmc_bert_opts *xmc_bert_get_opts(const xmc_bert *m) { return &m->o; }
float *xmc_bert_params(xmc_bert *m) { return m->params; }
float *xmc_bert_grads(xmc_bert *m) { return m->grads; }
int64_t xmc_bert_n_params(const xmc_bert *m) { return m->n_params; }
int xmc_bert_n_tensors(const xmc_bert *m) { return m->n_tensors; }

const xmc_bert_tensor *xmc_bert_tensor_at(const xmc_bert *m, int i)
{
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

const xmc_bert_tensor *xmc_bert_tensor_find(const xmc_bert *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name))
            return &m->tensors[i];
    return NULL;
}

size_t xmc_bert_bytes(const xmc_bert *m)
{
    size_t np = (size_t)m->n_params * sizeof(float);
    return np * (1 + (m->grads != NULL) + (m->am != NULL) + (m->av != NULL)) +
           m->act_floats * sizeof(float);
}

/* ------------------------------------------------------------ config */

static int json_int(const cJSON *j, const char *k, int *v, int required, const char *path,
                    xmc_error *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!x) {
        if (required)
            return XMC_ERR(err, XMC_EFORMAT, path, 0, "missing \"%s\"", k);
        return XMC_OK;
    }
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 1e9 ||
        x->valuedouble != floor(x->valuedouble))
        return XMC_ERR(err, XMC_EFORMAT, path, 0, "\"%s\" must be a non-negative integer", k);
    *v = (int)x->valuedouble;
    return XMC_OK;
}

static void json_float(const cJSON *j, const char *k, float *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    if (cJSON_IsNumber(x))
        *v = (float)x->valuedouble;
}

static int check_act(const cJSON *j, const char *k, const char *path, xmc_error *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!x)
        return XMC_OK;
    if (!cJSON_IsString(x))
        return XMC_ERR(err, XMC_EFORMAT, path, 0, "\"%s\" must be a string", k);
    if (strcmp(x->valuestring, "gelu"))
        return XMC_ERR(err, XMC_EUNSUPPORTED, path, 0,
                       "%s \"%.40s\" is not supported (only \"gelu\", the erf form)", k,
                       x->valuestring);
    return XMC_OK;
}

int xmc_bert_config_read(const char *path, xmc_bert_config *c, xmc_error *err)
{
    memset(c, 0, sizeof *c);
    cJSON *j;
    int rc = xmc_json_read_object(path, &j, err);
    if (rc != XMC_OK)
        return rc;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    const char *type = cJSON_IsString(mt) ? mt->valuestring : "";
    if (!strcmp(type, "bert")) {
        c->arch = XMC_BERT_ARCH_BERT;
        c->type_vocab = 2;
        c->ln_eps = 1e-12f;
        c->hidden_dropout = c->attn_dropout = 0.1f;
        if ((rc = json_int(j, "vocab_size", &c->vocab_size, 1, path, err)) ||
            (rc = json_int(j, "hidden_size", &c->hidden, 1, path, err)) ||
            (rc = json_int(j, "num_hidden_layers", &c->n_layers, 1, path, err)) ||
            (rc = json_int(j, "num_attention_heads", &c->n_heads, 1, path, err)) ||
            (rc = json_int(j, "intermediate_size", &c->intermediate, 1, path, err)) ||
            (rc = json_int(j, "max_position_embeddings", &c->max_pos, 1, path, err)) ||
            (rc = json_int(j, "type_vocab_size", &c->type_vocab, 0, path, err)) ||
            (rc = check_act(j, "hidden_act", path, err)))
            goto out;
        json_float(j, "layer_norm_eps", &c->ln_eps);
        json_float(j, "hidden_dropout_prob", &c->hidden_dropout);
        json_float(j, "attention_probs_dropout_prob", &c->attn_dropout);
        const cJSON *pe = cJSON_GetObjectItemCaseSensitive(j, "position_embedding_type");
        if (cJSON_IsString(pe) && strcmp(pe->valuestring, "absolute")) {
            rc = XMC_ERR(err, XMC_EUNSUPPORTED, path, 0,
                         "position_embedding_type \"%.40s\" is not supported (only "
                         "\"absolute\")",
                         pe->valuestring);
            goto out;
        }
    } else if (!strcmp(type, "distilbert")) {
        c->arch = XMC_BERT_ARCH_DISTILBERT;
        c->type_vocab = 0;
        c->ln_eps = 1e-12f; /* fixed in HF's DistilBERT */
        c->hidden_dropout = c->attn_dropout = 0.1f;
        if ((rc = json_int(j, "vocab_size", &c->vocab_size, 1, path, err)) ||
            (rc = json_int(j, "dim", &c->hidden, 1, path, err)) ||
            (rc = json_int(j, "n_layers", &c->n_layers, 1, path, err)) ||
            (rc = json_int(j, "n_heads", &c->n_heads, 1, path, err)) ||
            (rc = json_int(j, "hidden_dim", &c->intermediate, 1, path, err)) ||
            (rc = json_int(j, "max_position_embeddings", &c->max_pos, 1, path, err)) ||
            (rc = check_act(j, "activation", path, err)))
            goto out;
        json_float(j, "dropout", &c->hidden_dropout);
        json_float(j, "attention_dropout", &c->attn_dropout);
    } else {
        rc = XMC_ERR(err, XMC_EUNSUPPORTED, path, 0,
                     "model_type \"%.40s\" is not supported (bert, distilbert; MiniLM "
                     "checkpoints are \"bert\")",
                     type);
        goto out;
    }
    if (c->hidden < 1 || c->n_heads < 1 || c->hidden % c->n_heads || c->n_layers < 1 ||
        c->n_layers > XMC_BERT_MAX_LAYERS || c->vocab_size < 1 || c->intermediate < 1 ||
        c->max_pos < 2) {
        rc = XMC_ERR(err, XMC_EFORMAT, path, 0,
                     "inconsistent sizes: hidden %d, heads %d (must divide hidden), layers %d "
                     "(1..%d), vocab %d, intermediate %d, max positions %d",
                     c->hidden, c->n_heads, c->n_layers, XMC_BERT_MAX_LAYERS, c->vocab_size,
                     c->intermediate, c->max_pos);
        goto out;
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* ------------------------------------------------------------ tensors */

static void add_tensor(xmc_bert *m, const char *name, int64_t r, int64_t cdim, int no_decay)
{
    xmc_bert_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cdim ? 2 : 1;
    t->shape[0] = r;
    t->shape[1] = cdim;
    t->offset = m->n_params;
    t->no_decay = no_decay;
    m->n_params += r * (cdim ? cdim : 1);
}

/* The tensor table in HF names. Q, K, V weights are declared back to back,
 * then their biases, so each layer's QKV is one (3H x H) block. */
static void declare(xmc_bert *m)
{
    const xmc_bert_config *c = &m->c;
    int64_t H = c->hidden, I = c->intermediate;
    char n[96];
    m->n_tensors = 0;
    m->n_params = 0;
    add_tensor(m, "embeddings.word_embeddings.weight", c->vocab_size, H, 0);
    add_tensor(m, "embeddings.position_embeddings.weight", c->max_pos, H, 0);
    if (c->type_vocab > 0)
        add_tensor(m, "embeddings.token_type_embeddings.weight", c->type_vocab, H, 0);
    add_tensor(m, "embeddings.LayerNorm.weight", H, 0, 1);
    add_tensor(m, "embeddings.LayerNorm.bias", H, 0, 1);
    int db = c->arch == XMC_BERT_ARCH_DISTILBERT;
    static const char *const bert_names[] = {
        "attention.self.query.weight", "attention.self.key.weight",
        "attention.self.value.weight", "attention.self.query.bias",
        "attention.self.key.bias",     "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias",
        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
        "intermediate.dense.weight",   "intermediate.dense.bias",
        "output.dense.weight",         "output.dense.bias",
        "output.LayerNorm.weight",     "output.LayerNorm.bias"};
    static const char *const distil_names[] = {
        "attention.q_lin.weight", "attention.k_lin.weight", "attention.v_lin.weight",
        "attention.q_lin.bias",   "attention.k_lin.bias",   "attention.v_lin.bias",
        "attention.out_lin.weight", "attention.out_lin.bias", "sa_layer_norm.weight",
        "sa_layer_norm.bias",     "ffn.lin1.weight",        "ffn.lin1.bias",
        "ffn.lin2.weight",        "ffn.lin2.bias",          "output_layer_norm.weight",
        "output_layer_norm.bias"};
    const char *const *nm = db ? distil_names : bert_names;
    const int64_t rows[16] = {H, H, H, H, H, H, H, H, H, H, I, I, H, H, H, H};
    const int64_t cols[16] = {H, H, H, 0, 0, 0, H, 0, 0, 0, H, 0, I, 0, 0, 0};
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < 16; k++) {
            snprintf(n, sizeof n, "%s.%d.%s", db ? "transformer.layer" : "encoder.layer", l,
                     nm[k]);
            add_tensor(m, n, rows[k], cols[k], cols[k] == 0);
        }
}

static void point(const xmc_bert *m, float *base, emb_p *E, layer_p *P)
{
    const xmc_bert_tensor *t = m->tensors;
    int k = 0;
    E->wte = base + t[k++].offset;
    E->wpe = base + t[k++].offset;
    E->wtt = m->c.type_vocab > 0 ? base + t[k++].offset : NULL;
    E->lnw = base + t[k++].offset;
    E->lnb = base + t[k++].offset;
    for (int l = 0; l < m->c.n_layers; l++) {
        layer_p *p = &P[l];
        p->qkvw = base + t[k].offset;
        p->qkvb = base + t[k + 3].offset;
        p->ow = base + t[k + 6].offset;
        p->ob = base + t[k + 7].offset;
        p->ln1w = base + t[k + 8].offset;
        p->ln1b = base + t[k + 9].offset;
        p->fw = base + t[k + 10].offset;
        p->fb = base + t[k + 11].offset;
        p->f2w = base + t[k + 12].offset;
        p->f2b = base + t[k + 13].offset;
        p->ln2w = base + t[k + 14].offset;
        p->ln2b = base + t[k + 15].offset;
        k += 16;
    }
}

void xmc_bert_free(xmc_bert *m)
{
    if (!m)
        return;
    xmc_free(m->tensors);
    if (!m->ext_params)
        xmc_free_aligned(m->params);
    if (!m->ext_grads)
        xmc_free_aligned(m->grads);
    xmc_free_aligned(m->am);
    xmc_free_aligned(m->av);
    xmc_free_aligned(m->act_mem);
    xmc_free(m->P);
    xmc_free(m->G);
    xmc_free(m->xs);
    xmc_free(m->A);
    xmc_free(m->ids);
    xmc_free(m->lens);
    xmc_free(m);
}

static float *zalloc(int64_t n)
{
    float *p = xmc_malloc_aligned((size_t)n * sizeof(float));
    if (p)
        memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* Carve the activation and scratch buffers out of one allocation. */
static int alloc_acts(xmc_bert *m, xmc_error *err)
{
    const xmc_bert_config *c = &m->c;
    int64_t H = c->hidden, I = c->intermediate, NH = c->n_heads, L = c->n_layers;
    int64_t Bm = m->o.max_batch, Tm = m->o.max_len, BT = Bm * Tm;
    int train = m->o.train;
    int64_t per_layer = BT * H * 5 + BT * 3 * H + Bm * NH * Tm * Tm + BT * I + BT * 4;
    /* recompute: one shared set of layer activations, rebuilt per layer in
     * backward from the stored layer inputs xs[l] */
    int64_t nsets = train && !m->o.recompute ? L : 1;
    int64_t nx = train ? L + 1 : 2;
    m->nthr = omp_get_max_threads();
    int64_t nblk = (BT + 63) / 64;
    /* chunks hold at most max(128, Tm) rows (chunk_seqs), at most Bm of them */
    int64_t crows = Tm > 128 ? Tm : 128 + Tm;
    m->cred_stride = 2 * H * ((crows + 63) / 64) + 16;
    int64_t total = BT * H + 2 * BT + nx * BT * H + nsets * per_layer + BT * I +
                    (train ? BT * H * 7 + BT * 3 * H + BT * I + nblk * 3 * (H > I ? H : I) * 2 +
                                 Bm * (4 * H + 16) + Bm * m->cred_stride
                           : 0) +
                    2 * (int64_t)m->nthr * Tm * Tm + 64 * 32;
    m->act_floats = (size_t)total;
    m->act_mem = zalloc(total);
    m->xs = xmc_calloc((size_t)(L + 1), sizeof *m->xs);
    m->A = xmc_calloc((size_t)L, sizeof *m->A);
    if (!m->act_mem || !m->xs || !m->A)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "out of memory for activations (%.1f MB for batch %lld x length %lld; "
                       "lower the batch size or max length)",
                       (double)total * 4 / 1e6, (long long)Bm, (long long)Tm);
    float *p = m->act_mem;
#define TAKE(n) (p += (((n) + 15) & ~(int64_t)15), p - (((n) + 15) & ~(int64_t)15))
    m->emb = TAKE(BT * H);
    m->em = TAKE(BT);
    m->es = TAKE(BT);
    float *xb[XMC_BERT_MAX_LAYERS + 1];
    for (int64_t i = 0; i < nx; i++)
        xb[i] = TAKE(BT * H);
    for (int64_t l = 0; l <= L; l++)
        m->xs[l] = train ? xb[l] : xb[l & 1];
    for (int64_t s = 0; s < nsets; s++) {
        layer_a *a = &m->A[s];
        a->qkv = TAKE(BT * 3 * H);
        a->att = TAKE(Bm * NH * Tm * Tm);
        a->atty = TAKE(BT * H);
        a->r1 = TAKE(BT * H);
        a->h1 = TAKE(BT * H);
        a->f = TAKE(BT * I);
        a->r2 = TAKE(BT * H);
        a->m1 = TAKE(BT);
        a->s1 = TAKE(BT);
        a->m2 = TAKE(BT);
        a->s2 = TAKE(BT);
    }
    for (int64_t l = 0; l < L; l++) {
        if (nsets == 1)
            m->A[l] = m->A[0]; /* shared set (inference or recompute) */
        m->A[l].x = m->xs[l];
    }
    m->gbuf = TAKE(BT * I);
    if (train) {
        m->d1 = TAKE(BT * H);
        m->d2 = TAKE(BT * H);
        m->d3 = TAKE(BT * H);
        m->d4 = TAKE(BT * H);
        m->d5 = TAKE(BT * H);
        m->dx = TAKE(BT * H);
        m->datty = TAKE(BT * H);
        m->dqkv = TAKE(BT * 3 * H);
        m->dI = TAKE(BT * I);
        m->red = TAKE(nblk * 3 * (H > I ? H : I) * 2);
        m->part = TAKE(Bm * (4 * H + 16));
        m->cred = TAKE(Bm * m->cred_stride);
    }
    m->tP = TAKE((int64_t)m->nthr * Tm * Tm);
    m->tdP = TAKE((int64_t)m->nthr * Tm * Tm);
#undef TAKE
    if (p > m->act_mem + total)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "internal: activation sizing (%lld > %lld)",
                       (long long)(p - m->act_mem), (long long)total);
    return XMC_OK;
}

static int create_empty(const xmc_bert_config *c, const xmc_bert_opts *o, xmc_bert **out,
                        xmc_error *err)
{
    *out = NULL;
    xmc_bert_opts od;
    if (!o) {
        xmc_bert_opts_default(&od);
        o = &od;
    }
    if (o->max_batch < 1 || o->max_len < 2 || o->max_len > c->max_pos)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "max_batch %d must be >= 1 and max_len %d in [2, %d] (the model's "
                       "max_position_embeddings)",
                       o->max_batch, o->max_len, c->max_pos);
    if (c->hidden < 1 || c->n_heads < 1 || c->hidden % c->n_heads || c->n_layers < 1 ||
        c->n_layers > XMC_BERT_MAX_LAYERS || c->vocab_size < 1 || c->intermediate < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "inconsistent model sizes");
    /* the kernels ask for the CPU level inside parallel loops: fill its
     * cache here, outside any, so no two threads race to initialise it */
    (void)xmc_cpu_features();
    xmc_bert *m = xmc_calloc(1, sizeof *m);
    if (!m)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    m->c = *c;
    m->o = *o;
    m->p_hidden = o->hidden_dropout >= 0 ? o->hidden_dropout : c->hidden_dropout;
    m->p_attn = o->attn_dropout >= 0 ? o->attn_dropout : c->attn_dropout;
    if (!(m->p_hidden >= 0 && m->p_hidden < 1) || !(m->p_attn >= 0 && m->p_attn < 1)) {
        xmc_bert_free(m);
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "dropout must be in [0, 1)");
    }
    int rc;
    m->tensors = xmc_calloc((size_t)(5 + 16 * c->n_layers), sizeof *m->tensors);
    m->P = xmc_calloc((size_t)c->n_layers, sizeof *m->P);
    m->G = xmc_calloc((size_t)c->n_layers, sizeof *m->G);
    m->ids = xmc_malloc((size_t)o->max_batch * (size_t)o->max_len * sizeof *m->ids);
    m->lens = xmc_malloc((size_t)o->max_batch * sizeof *m->lens);
    if (!m->tensors || !m->P || !m->G || !m->ids || !m->lens) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
        goto fail;
    }
    declare(m);
    m->params = zalloc(m->n_params);
    if (!m->params) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory for %lld parameters",
                     (long long)m->n_params);
        goto fail;
    }
    if (o->train) {
        m->grads = zalloc(m->n_params);
        if (!o->no_moments) {
            m->am = zalloc(m->n_params);
            m->av = zalloc(m->n_params);
        }
        if (!m->grads || (!o->no_moments && (!m->am || !m->av))) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                         "out of memory for gradients and AdamW moments (%lld parameters)",
                         (long long)m->n_params);
            goto fail;
        }
        point(m, m->grads, &m->GE, m->G);
    }
    point(m, m->params, &m->E, m->P);
    if ((rc = alloc_acts(m, err)) != XMC_OK)
        goto fail;
    *out = m;
    return XMC_OK;
fail:
    xmc_bert_free(m);
    return rc;
}

int xmc_bert_create(const xmc_bert_config *c, const xmc_bert_opts *o, xmc_bert **out,
                    xmc_error *err)
{
    int rc = create_empty(c, o, out, err);
    if (rc != XMC_OK)
        return rc;
    xmc_bert *m = *out;
    xmc_rng r;
    xmc_rng_seed(&r, m->o.seed, 0x62657274); /* "bert" stream */
    for (int i = 0; i < m->n_tensors; i++) {
        const xmc_bert_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        int64_t n = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
        int is_ln_w = strstr(t->name, "LayerNorm.weight") || strstr(t->name, "layer_norm.weight");
        for (int64_t k = 0; k < n; k++)
            p[k] = t->ndim == 2 ? 0.02f * xmc_rng_normal(&r) : (is_ln_w ? 1.0f : 0.0f);
    }
    return XMC_OK;
}

/* ------------------------------------------------------------ loading */

static const xmc_st_tensor *find_hf(const xmc_safetensors *st, const char *name, int arch,
                                    char *tried, size_t ntried)
{
    const char *prefix = arch == XMC_BERT_ARCH_DISTILBERT ? "distilbert." : "bert.";
    char alt[160];
    const xmc_st_tensor *t = xmc_safetensors_find(st, name);
    if (t)
        return t;
    snprintf(alt, sizeof alt, "%s%s", prefix, name);
    if ((t = xmc_safetensors_find(st, alt)))
        return t;
    /* TF-converted checkpoints name LayerNorm parameters gamma / beta */
    const char *ln = strstr(name, "LayerNorm.");
    if (ln) {
        char g[128];
        int k = (int)(ln - name) + 10;
        const char *rest = name + k;
        const char *nw = !strcmp(rest, "weight") ? "gamma" : !strcmp(rest, "bias") ? "beta" : NULL;
        if (nw) {
            snprintf(g, sizeof g, "%.*s%s", k, name, nw);
            if ((t = xmc_safetensors_find(st, g)))
                return t;
            snprintf(alt, sizeof alt, "%s%s", prefix, g);
            if ((t = xmc_safetensors_find(st, alt)))
                return t;
        }
    }
    snprintf(tried, ntried, "'%s' or '%s%s'", name, prefix, name);
    return NULL;
}

int xmc_bert_load_safetensors(xmc_bert *m, const char *path, xmc_error *err)
{
    xmc_safetensors *st;
    int rc = xmc_safetensors_open(path, &st, err);
    if (rc != XMC_OK)
        return rc;
    for (int i = 0; i < m->n_tensors && rc == XMC_OK; i++) {
        const xmc_bert_tensor *bt = &m->tensors[i];
        char tried[256];
        const xmc_st_tensor *t = find_hf(st, bt->name, m->c.arch, tried, sizeof tried);
        if (!t) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, 0, "missing tensor %s (a %s checkpoint?)",
                         tried, m->c.arch == XMC_BERT_ARCH_DISTILBERT ? "DistilBERT" : "BERT");
            break;
        }
        int ok = t->ndim == bt->ndim && t->shape[0] == bt->shape[0] &&
                 (bt->ndim == 1 || t->shape[1] == bt->shape[1]);
        if (!ok) {
            char got[96] = "", want[64];
            size_t k = 0;
            for (int d = 0; d < t->ndim && k < sizeof got - 24; d++)
                k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", d ? ", " : "",
                                      (long long)t->shape[d]);
            if (bt->ndim == 2)
                snprintf(want, sizeof want, "%lld, %lld", (long long)bt->shape[0],
                         (long long)bt->shape[1]);
            else
                snprintf(want, sizeof want, "%lld", (long long)bt->shape[0]);
            rc = XMC_ERR(err, XMC_EFORMAT, path, 0,
                         "tensor '%s' has shape [%s], config.json implies [%s]", t->name, got,
                         want);
            break;
        }
        rc = xmc_safetensors_to_f32(st, t, m->params + bt->offset, err);
    }
    xmc_safetensors_close(st);
    return rc;
}

int xmc_bert_load(const char *dir, const xmc_bert_opts *o, xmc_bert **out, xmc_error *err)
{
    *out = NULL;
    char path[4096 + 32];
    if (strlen(dir) > 4000)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "model path too long");
    snprintf(path, sizeof path, "%s/config.json", dir);
    xmc_bert_config c;
    int rc = xmc_bert_config_read(path, &c, err);
    if (rc != XMC_OK)
        return rc;
    xmc_bert_opts od;
    if (!o) {
        xmc_bert_opts_default(&od);
        if (od.max_len > c.max_pos)
            od.max_len = c.max_pos;
        o = &od;
    }
    xmc_bert *m;
    if ((rc = create_empty(&c, o, &m, err)) != XMC_OK)
        return rc;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = xmc_bert_load_safetensors(m, path, err)) != XMC_OK) {
        xmc_bert_free(m);
        return rc;
    }
    *out = m;
    return XMC_OK;
}

/* ------------------------------------------------------------ dropout */

static inline uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t site_key(const xmc_bert *m, int site)
{
    return mix64(mix64(m->o.seed ^ 0x64726f70ULL) + m->step * 0x100000001b3ULL +
                 (uint64_t)site);
}

/* Keep element idx of a site? Same answer in forward and backward. */
static inline int keep(uint64_t key, uint64_t idx, uint32_t thresh)
{
    return (uint32_t)(mix64(key + idx) >> 32) >= thresh;
}

static uint32_t drop_thresh(float p) { return (uint32_t)((double)p * 4294967296.0); }

/* x[i] = keep(first + i) ? x[i] / (1 - p) : 0 over n elements; the same
 * call is the backward. Runs in the caller's thread. */
static void dropout_apply(float *x, int64_t n, float p, uint64_t key, int64_t first)
{
    if (p <= 0.0f)
        return;
    uint32_t th = drop_thresh(p);
    float s = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++)
        x[i] = keep(key, (uint64_t)(first + i), th) ? x[i] * s : 0.0f;
}

enum { SITE_EMB = 0, SITE_ATT_P = 1, SITE_ATT_OUT = 2, SITE_FFN_OUT = 3 };
#define SITE(l, k) ((l) * 4 + (k))

/* Sequences per chunk: ~128 rows, a size at which a single-threaded GEMM
 * is efficient. Fixed by T alone (not the thread count), so reductions over
 * chunks are reproducible. */
static int chunk_seqs(int T) { return T >= 128 ? 1 : 128 / T; }

/* ------------------------------------------------------------ forward */

/* Y (N x out) = X (N x in) W^T + b, in the calling thread (inside the chunk
 * loop OpenBLAS runs single-threaded). */
static void linear_rows(float *Y, const float *X, const float *W, const float *b, int64_t N,
                        int in, int outd)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, outd, in, 1.0f, X, in, W, in,
                0.0f, Y, outd);
    for (int64_t i = 0; i < N; i++) {
        float *y = Y + i * outd;
#pragma omp simd
        for (int j = 0; j < outd; j++)
            y[j] += b[j];
    }
}

static void attention_fwd(xmc_bert *m, const layer_a *a, int train, int layer, int b0, int b1)
{
    const int T = m->T, H = m->c.hidden, NH = m->c.n_heads, hs = H / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const float p = train ? m->p_attn : 0.0f;
    const uint64_t key = site_key(m, SITE(layer, SITE_ATT_P));
    const uint32_t th = drop_thresh(p);
    const float ps = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
    float *tp = m->tP + (int64_t)omp_get_thread_num() * T * T;
    for (int b = b0; b < b1; b++)
        for (int h = 0; h < NH; h++) {
            int len = m->lens[b];
            const float *q = a->qkv + (int64_t)b * T * 3 * H + h * hs;
            const float *k = q + H, *v = q + 2 * H;
            float *S = a->att + ((int64_t)b * NH + h) * T * T;
            float *Y = a->atty + (int64_t)b * T * H + h * hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hs, scale, q, 3 * H,
                        k, 3 * H, 0.0f, S, T);
            xmc_bert_softmax_fwd(S, len, len, T);
            const float *Pd = S;
            if (p > 0) {
                for (int i = 0; i < len; i++)
                    for (int j = 0; j < len; j++) {
                        uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                        tp[i * T + j] = keep(key, idx, th) ? S[i * T + j] * ps : 0.0f;
                    }
                Pd = tp;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hs, len, 1.0f, Pd, T, v,
                        3 * H, 0.0f, Y, H);
            for (int i = len; i < T; i++) /* pad query rows: defined zeros */
                memset(Y + (int64_t)i * H, 0, sizeof(float) * (size_t)hs);
        }
}

static void add_rows(float *y, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

/* The whole forward of sequences [b0, b1): every operation is row-wise or
 * per sequence, so chunks need no synchronisation at all. */
static void layer_chunk(xmc_bert *m, int l, int b0, int b1, int train);
static void pool_chunk(const xmc_bert *m, int b0, int b1, float *pooled);

static void forward_chunk(xmc_bert *m, int b0, int b1, int train, float *pooled)
{
    const xmc_bert_config *c = &m->c;
    const int T = m->T, H = c->hidden, L = c->n_layers;
    const int64_t r0 = (int64_t)b0 * T, R = (int64_t)(b1 - b0) * T;
    for (int64_t i = r0; i < r0 + R; i++) {
        int t = (int)(i % T);
        const float *we = m->E.wte + (int64_t)m->ids[i] * H, *pe = m->E.wpe + (int64_t)t * H;
        const float *te = m->E.wtt;
        float *o = m->emb + i * H;
#pragma omp simd
        for (int k = 0; k < H; k++)
            o[k] = we[k] + pe[k] + (te ? te[k] : 0.0f);
    }
    xmc_bert_layernorm_fwd(m->xs[0] + r0 * H, m->em + r0, m->es + r0, m->emb + r0 * H, m->E.lnw,
                           m->E.lnb, R, H, c->ln_eps);
    if (train)
        dropout_apply(m->xs[0] + r0 * H, R * H, m->p_hidden, site_key(m, SITE_EMB), r0 * H);
    for (int l = 0; l < L; l++)
        layer_chunk(m, l, b0, b1, train);
    pool_chunk(m, b0, b1, pooled);
}

/* Layer l for sequences [b0, b1): xs[l] -> xs[l + 1], keeping what
 * backward needs in A[l] (also used to recompute it in backward). */
static void layer_chunk(xmc_bert *m, int l, int b0, int b1, int train)
{
    const xmc_bert_config *c = &m->c;
    const int T = m->T, H = c->hidden, I = c->intermediate;
    const int64_t r0 = (int64_t)b0 * T, R = (int64_t)(b1 - b0) * T;
    {
        const layer_p *p = &m->P[l];
        layer_a *a = &m->A[l];
        float *x = a->x + r0 * H, *r1 = a->r1 + r0 * H, *h1 = a->h1 + r0 * H;
        float *f = a->f + r0 * I, *g = m->gbuf + r0 * I, *r2 = a->r2 + r0 * H;
        linear_rows(a->qkv + r0 * 3 * H, x, p->qkvw, p->qkvb, R, H, 3 * H);
        attention_fwd(m, a, train, l, b0, b1);
        linear_rows(r1, a->atty + r0 * H, p->ow, p->ob, R, H, H);
        if (train)
            dropout_apply(r1, R * H, m->p_hidden, site_key(m, SITE(l, SITE_ATT_OUT)), r0 * H);
        add_rows(r1, x, R * H);
        xmc_bert_layernorm_fwd(h1, a->m1 + r0, a->s1 + r0, r1, p->ln1w, p->ln1b, R, H, c->ln_eps);
        linear_rows(f, h1, p->fw, p->fb, R, H, I);
        xmc_bert_gelu_fwd(g, f, R * I);
        linear_rows(r2, g, p->f2w, p->f2b, R, I, H);
        if (train)
            dropout_apply(r2, R * H, m->p_hidden, site_key(m, SITE(l, SITE_FFN_OUT)), r0 * H);
        add_rows(r2, h1, R * H);
        xmc_bert_layernorm_fwd(m->xs[l + 1] + r0 * H, a->m2 + r0, a->s2 + r0, r2, p->ln2w,
                               p->ln2b, R, H, c->ln_eps);
    }
}

static void pool_chunk(const xmc_bert *m, int b0, int b1, float *pooled)
{
    const int T = m->T, H = m->c.hidden;
    const float *x = m->xs[m->c.n_layers];
    for (int b = b0; b < b1; b++) {
        float *o = pooled + (int64_t)b * H;
        const float *xb = x + (int64_t)b * T * H;
        if (m->o.pooling == XMC_BERT_POOL_CLS) {
            memcpy(o, xb, sizeof(float) * (size_t)H);
            continue;
        }
        memset(o, 0, sizeof(float) * (size_t)H);
        for (int t = 0; t < m->lens[b]; t++)
            add_rows(o, xb + (int64_t)t * H, H);
        float inv = 1.0f / (float)m->lens[b];
        for (int k = 0; k < H; k++)
            o[k] *= inv;
    }
}

static int check_batch(const xmc_bert *m, const int32_t *ids, const int32_t *lens, int B, int ld,
                       xmc_error *err)
{
    if (B < 1 || B > m->o.max_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "batch of %d rows, the model was sized for 1..%d",
                       B, m->o.max_batch);
    for (int b = 0; b < B; b++) {
        if (lens[b] < 1 || lens[b] > m->o.max_len || lens[b] > ld)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "row %d has %d tokens; expected 1..%d (max_len, row stride %d)", b,
                           lens[b], m->o.max_len, ld);
        for (int t = 0; t < lens[b]; t++) {
            int32_t id = ids[(int64_t)b * ld + t];
            if (id < 0 || id >= m->c.vocab_size)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "row %d token %d: id %d outside the vocabulary (0..%d)", b, t, id,
                               m->c.vocab_size - 1);
        }
    }
    return XMC_OK;
}

int xmc_bert_forward(xmc_bert *m, const int32_t *ids, const int32_t *lens, int B, int ld,
                     int train, float *pooled, xmc_error *err)
{
    if (train && !m->o.train)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0, "training forward on a model created without "
                                                 "opts.train");
    int rc = check_batch(m, ids, lens, B, ld, err);
    if (rc != XMC_OK)
        return rc;
    int T = 0;
    for (int b = 0; b < B; b++)
        T = lens[b] > T ? lens[b] : T;
    m->B = B;
    m->T = T;
    m->last_train = train;
    if (train)
        m->step++;
    for (int b = 0; b < B; b++) {
        m->lens[b] = lens[b];
        for (int t = 0; t < T; t++)
            m->ids[(int64_t)b * T + t] = t < lens[b] ? ids[(int64_t)b * ld + t] : 0;
    }
    const int spc = chunk_seqs(T), nch = (B + spc - 1) / spc;
#pragma omp parallel for schedule(dynamic, 1) num_threads(m->nthr)
    for (int ch = 0; ch < nch; ch++)
        forward_chunk(m, ch * spc, (ch + 1) * spc < B ? (ch + 1) * spc : B, train, pooled);
    return XMC_OK;
}

/* ------------------------------------------------------------ backward */

void xmc_bert_bind_buffers(xmc_bert *m, float *params, float *grads)
{
    memcpy(params, m->params, (size_t)m->n_params * sizeof(float));
    if (!m->ext_params)
        xmc_free_aligned(m->params);
    m->ext_params = 1;
    m->params = params;
    point(m, m->params, &m->E, m->P);
    if (grads && m->o.train) { /* else the model keeps its own grads */
        memset(grads, 0, (size_t)m->n_params * sizeof(float));
        if (!m->ext_grads)
            xmc_free_aligned(m->grads);
        m->ext_grads = 1;
        m->grads = grads;
        point(m, m->grads, &m->GE, m->G);
    }
}

void xmc_bert_set_step(xmc_bert *m, uint64_t step) { m->step = step; }
uint64_t xmc_bert_get_step(const xmc_bert *m) { return m->step; }

void xmc_bert_zero_grad(xmc_bert *m)
{
    if (m->grads)
        memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
}

static void attention_bwd(xmc_bert *m, const layer_a *a, int layer, int b0, int b1)
{
    const int T = m->T, H = m->c.hidden, NH = m->c.n_heads, hs = H / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const float p = m->p_attn;
    const uint64_t key = site_key(m, SITE(layer, SITE_ATT_P));
    const uint32_t th = drop_thresh(p);
    const float ps = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
    int tid = omp_get_thread_num();
    float *dP = m->tdP + (int64_t)tid * T * T, *tp = m->tP + (int64_t)tid * T * T;
    memset(m->dqkv + (int64_t)b0 * T * 3 * H, 0, sizeof(float) * (size_t)(b1 - b0) * T * 3 * H);
    for (int b = b0; b < b1; b++)
        for (int h = 0; h < NH; h++) {
            int len = m->lens[b];
            int64_t ro = (int64_t)b * T * 3 * H + h * hs;
            const float *q = a->qkv + ro, *k = q + H, *v = q + 2 * H;
            float *dq = m->dqkv + ro, *dk = dq + H, *dv = dq + 2 * H;
            const float *P = a->att + ((int64_t)b * NH + h) * T * T;
            const float *dY = m->datty + (int64_t)b * T * H + h * hs;
            const float *Pd = P;
            if (p > 0) {
                for (int i = 0; i < len; i++)
                    for (int j = 0; j < len; j++) {
                        uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                        tp[i * T + j] = keep(key, idx, th) ? P[i * T + j] * ps : 0.0f;
                    }
                Pd = tp;
            }
            /* dPd = dY V^T, dV = Pd^T dY */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hs, 1.0f, dY, H, v,
                        3 * H, 0.0f, dP, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, hs, len, 1.0f, Pd, T, dY, H,
                        0.0f, dv, 3 * H);
            if (p > 0)
                for (int i = 0; i < len; i++)
                    for (int j = 0; j < len; j++) {
                        uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                        dP[i * T + j] = keep(key, idx, th) ? dP[i * T + j] * ps : 0.0f;
                    }
            xmc_bert_softmax_bwd(dP, P, dP, len, len, T);
            /* S = scale Q K^T: dQ = scale dS K, dK = scale dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hs, len, scale, dP, T, k,
                        3 * H, 0.0f, dq, 3 * H);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, hs, len, scale, dP, T, q,
                        3 * H, 0.0f, dk, 3 * H);
        }
}

/* Row-wise part of a layer's backward for sequences [b0, b1) (chunk ch):
 * from dx (grad of the layer output) to dx (grad of its input), keeping
 * the gradients the weight GEMMs need (dout, dI, da, dqkv) and the GELU
 * output. LayerNorm parameter grads go to this chunk's partial sums. */
static void backward_chunk(xmc_bert *m, int l, int ch, int b0, int b1)
{
    const xmc_bert_config *c = &m->c;
    const int T = m->T, H = c->hidden, I = c->intermediate;
    const int64_t r0 = (int64_t)b0 * T, R = (int64_t)(b1 - b0) * T;
    if (m->o.recompute) /* same inputs, same step: the same activations */
        layer_chunk(m, l, b0, b1, 1);
    const layer_p *p = &m->P[l];
    const layer_a *a = &m->A[l];
    float *part = m->part + (int64_t)ch * 4 * H; /* ln2w, ln2b, ln1w, ln1b */
    float *scr = m->cred + (int64_t)ch * m->cred_stride;
    memset(part, 0, sizeof(float) * 4 * (size_t)H);
    float *dx = m->dx + r0 * H, *dr2 = m->d1 + r0 * H, *dout = m->d3 + r0 * H;
    float *dh1 = m->d2 + r0 * H, *dr1 = m->d4 + r0 * H, *da = m->d5 + r0 * H;
    float *dI = m->dI + r0 * I, *g = m->gbuf + r0 * I;
    xmc_bert_layernorm_bwd(dr2, part, part + H, dx, a->r2 + r0 * H, p->ln2w, a->m2 + r0,
                           a->s2 + r0, R, H, scr);
    memcpy(dout, dr2, sizeof(float) * (size_t)(R * H));
    dropout_apply(dout, R * H, m->p_hidden, site_key(m, SITE(l, SITE_FFN_OUT)), r0 * H);
    xmc_bert_gelu_fwd(g, a->f + r0 * I, R * I); /* recomputed, not stored */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, I, H, 1.0f, dout, H, p->f2w,
                I, 0.0f, dI, I);
    xmc_bert_gelu_bwd(dI, a->f + r0 * I, dI, R * I);
    memcpy(dh1, dr2, sizeof(float) * (size_t)(R * H));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, H, I, 1.0f, dI, I, p->fw, H,
                1.0f, dh1, H);
    xmc_bert_layernorm_bwd(dr1, part + 2 * H, part + 3 * H, dh1, a->r1 + r0 * H, p->ln1w,
                           a->m1 + r0, a->s1 + r0, R, H, scr);
    memcpy(da, dr1, sizeof(float) * (size_t)(R * H));
    dropout_apply(da, R * H, m->p_hidden, site_key(m, SITE(l, SITE_ATT_OUT)), r0 * H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, H, H, 1.0f, da, H, p->ow, H,
                0.0f, m->datty + r0 * H, H);
    attention_bwd(m, a, l, b0, b1);
    memcpy(dx, dr1, sizeof(float) * (size_t)(R * H));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, H, 3 * H, 1.0f,
                m->dqkv + r0 * 3 * H, 3 * H, p->qkvw, H, 1.0f, dx, H);
}

/* Weight gradients of one layer: dW (out x in) += dY^T X over all BT rows
 * and db += column sums of dY, for the four linear maps at once. The output
 * rows of all four are cut into 64-row blocks handed out dynamically, each
 * block one single-threaded GEMM: a single parallel region per layer (no
 * barrier between the GEMMs), and each gradient element is computed by one
 * thread in a fixed order whatever the thread count. */
typedef struct wg_job {
    float *dW, *db;
    const float *dY, *X;
    int in, outd;
} wg_job;

static void weight_grads(const xmc_bert *m, const wg_job *jobs, int nj, int64_t N)
{
    int first[8], total = 0;
    for (int j = 0; j < nj; j++) {
        first[j] = total;
        total += (jobs[j].outd + 63) / 64;
    }
    first[nj] = total;
#pragma omp parallel for schedule(dynamic, 1) num_threads(m->nthr)
    for (int t = 0; t < total; t++) {
        int j = 0;
        while (t >= first[j + 1])
            j++;
        const wg_job *w = &jobs[j];
        int o0 = (t - first[j]) * 64, o1 = o0 + 64 < w->outd ? o0 + 64 : w->outd;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, w->in, (int)N, 1.0f,
                    w->dY + o0, w->outd, w->X, w->in, 1.0f, w->dW + (int64_t)o0 * w->in, w->in);
        float acc[64] = {0};
        for (int64_t i = 0; i < N; i++) {
            const float *r = w->dY + i * w->outd + o0;
            for (int o = 0; o < o1 - o0; o++)
                acc[o] += r[o];
        }
        for (int o = 0; o < o1 - o0; o++)
            w->db[o0 + o] += acc[o];
    }
}

int xmc_bert_backward(xmc_bert *m, const float *dpooled, xmc_error *err)
{
    if (!m->o.train || !m->last_train)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                       "backward needs a preceding training forward (opts.train, train=1)");
    const xmc_bert_config *c = &m->c;
    const int B = m->B, T = m->T, H = c->hidden, I = c->intermediate, L = c->n_layers;
    const int64_t BT = (int64_t)B * T;
    const int spc = chunk_seqs(T), nch = (B + spc - 1) / spc;
    float *dx = m->dx;
    memset(dx, 0, sizeof(float) * (size_t)BT * H);
    for (int b = 0; b < B; b++) {
        const float *g = dpooled + (int64_t)b * H;
        if (m->o.pooling == XMC_BERT_POOL_CLS) {
            memcpy(dx + (int64_t)b * T * H, g, sizeof(float) * (size_t)H);
            continue;
        }
        float inv = 1.0f / (float)m->lens[b];
        for (int t = 0; t < m->lens[b]; t++)
            for (int k = 0; k < H; k++)
                dx[((int64_t)b * T + t) * H + k] = g[k] * inv;
    }
    for (int l = L - 1; l >= 0; l--) {
        layer_p *g = &m->G[l];
        const layer_a *a = &m->A[l];
#pragma omp parallel for schedule(dynamic, 1) num_threads(m->nthr)
        for (int ch = 0; ch < nch; ch++)
            backward_chunk(m, l, ch, ch * spc, (ch + 1) * spc < B ? (ch + 1) * spc : B);
        for (int ch = 0; ch < nch; ch++) { /* fixed order: reproducible */
            const float *part = m->part + (int64_t)ch * 4 * H;
            for (int k = 0; k < H; k++) {
                g->ln2w[k] += part[k];
                g->ln2b[k] += part[H + k];
                g->ln1w[k] += part[2 * H + k];
                g->ln1b[k] += part[3 * H + k];
            }
        }
        const wg_job jobs[4] = {{g->f2w, g->f2b, m->d3, m->gbuf, I, H},
                                {g->fw, g->fb, m->dI, a->h1, H, I},
                                {g->ow, g->ob, m->d5, a->atty, H, H},
                                {g->qkvw, g->qkvb, m->dqkv, a->x, H, 3 * H}};
        weight_grads(m, jobs, 4, BT);
    }
    dropout_apply(dx, BT * H, m->p_hidden, site_key(m, SITE_EMB), 0);
    xmc_bert_layernorm_bwd(m->d1, m->GE.lnw, m->GE.lnb, dx, m->emb, m->E.lnw, m->em, m->es, BT, H,
                           m->red);
    /* scatter into the embedding tables; rows are few (B*T), H wide:
     * parallel over the hidden dimension so no two threads share a cell */
#pragma omp parallel num_threads(m->nthr)
    {
        int nt = omp_get_num_threads(), me = omp_get_thread_num();
        int k0 = (int)((int64_t)H * me / nt), k1 = (int)((int64_t)H * (me + 1) / nt);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < m->lens[b]; t++) {
                const float *d = m->d1 + ((int64_t)b * T + t) * H;
                float *we = m->GE.wte + (int64_t)m->ids[(int64_t)b * T + t] * H;
                float *pe = m->GE.wpe + (int64_t)t * H;
                float *te = m->GE.wtt;
                for (int k = k0; k < k1; k++) {
                    we[k] += d[k];
                    pe[k] += d[k];
                    if (te)
                        te[k] += d[k];
                }
            }
    }
    return XMC_OK;
}

/* ------------------------------------------------------------ AdamW */

int xmc_bert_adamw_step(xmc_bert *m, const xmc_bert_adamw *hp, xmc_error *err)
{
    if (!m->o.train || !m->am)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                       "AdamW on a model created without opts.train (or with no_moments)");
    if (hp->step < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "AdamW step must be >= 1 (got %lld)",
                       (long long)hp->step);
    const float b1 = hp->beta1, b2 = hp->beta2;
    const float bc1 = 1.0f - powf(b1, (float)hp->step);
    const float bc2s = sqrtf(1.0f - powf(b2, (float)hp->step));
    const float step_size = hp->lr / bc1;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const xmc_bert_tensor *t = &m->tensors[ti];
        int64_t n = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
        float *w = m->params + t->offset, *g = m->grads + t->offset;
        float *mm = m->am + t->offset, *vv = m->av + t->offset;
        float decay = t->no_decay ? 1.0f : 1.0f - hp->lr * hp->weight_decay;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i];
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            float denom = sqrtf(vv[i]) / bc2s + hp->eps;
            w[i] = w[i] * decay - step_size * mm[i] / denom;
        }
    }
    return XMC_OK;
}
