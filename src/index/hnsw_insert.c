/* HNSW insertion: INSERT (Algorithm 1) and SELECT-NEIGHBORS-HEURISTIC
 * (Algorithm 4) of Malkov & Yashunin 2018, with the paper's symbols:
 * q the new element, l its level, L the top layer, ep the enter points,
 * W the found neighbours, M / Mmax / Mmax0 (= M0 = 2M) the link limits.
 *
 * Locking (see internal.h for the scheme): the global lock is taken to read
 * ep and L, and kept for the whole insert only when l > L (the new element
 * becomes the entry point). Each layer's search copies lists under node
 * locks. Linking q into a neighbour e's list happens under e's lock, and
 * when e's list is full the shrink (Algorithm 4 over e's links + q) runs
 * under that lock too. pgvector instead chooses neighbours without the lock
 * and re-checks afterwards, because its locks are buffer locks on shared
 * pages; ours are 1-byte spinlocks held for at most M0 + 1 distances
 * (~1 us at d = 64), so the simpler scheme costs little and never links a
 * stale list.
 *
 * Memory: none allocated; the scratch (candidate pool, selection buffers)
 * comes from the caller.
 */
#include <string.h>

#include "index/internal.h"

/* Algorithm 4 with extendCandidates = false and keepPrunedConnections =
 * false (hnswlib's choice): take candidates C (sorted by distance to the
 * base element, n of them) in order, and keep e only if it is closer to the
 * base than to every element already kept. Writes at most M into R. */
static int select_heuristic(const xmc_hnsw *h, const hnsw_cand *C, int n, int M, int32_t skip,
                            hnsw_cand *R)
{
    int r = 0;
    for (int i = 0; i < n && r < M; i++) {
        if (C[i].id == skip)
            continue;
        const void *ev = hnsw_vec(h, C[i].id);
        int good = 1;
        for (int j = 0; j < r && good; j++)
            if (hnsw_dist(h, ev, R[j].id) < C[i].d)
                good = 0;
        if (good)
            R[r++] = C[i];
    }
    return r;
}

/* Add q (at distance dq) to e's list on layer lc, shrinking with
 * Algorithm 4 when e already has Mmax links (Algorithm 1 lines 12-16). */
static void connect(xmc_hnsw *h, hnsw_scratch *s, int32_t e, int32_t q, float dq, int lc,
                    int Mmax)
{
    hnsw_lock(&h->locks[e]);
    int32_t *le = hnsw_links(h, e, lc);
    int c = le[0];
    if (c < Mmax) {
        le[1 + c] = q;
        le[0] = c + 1;
    } else {
        const void *ev = hnsw_vec(h, e);
        hnsw_cand *C = s->pool; /* free here: the layer's W was copied to s->ep */
        int n = 0;
        for (int j = 0; j < c; j++) {
            hnsw_cand x = {hnsw_dist(h, ev, le[1 + j]), le[1 + j], 0};
            int p = n++;
            while (p > 0 && C[p - 1].d > x.d) { /* insertion sort: n <= M0 + 1 */
                C[p] = C[p - 1];
                p--;
            }
            C[p] = x;
        }
        hnsw_cand x = {dq, q, 0};
        int p = n++;
        while (p > 0 && C[p - 1].d > x.d) {
            C[p] = C[p - 1];
            p--;
        }
        C[p] = x;
        int r = select_heuristic(h, C, n, Mmax, e, s->sel);
        for (int j = 0; j < r; j++)
            le[1 + j] = s->sel[j].id;
        le[0] = r;
    }
    hnsw_unlock(&h->locks[e]);
}

void hnsw_insert(xmc_hnsw *h, hnsw_scratch *s, int32_t q)
{
    const void *qv = hnsw_vec(h, q);
    const int l = h->level[q];
    hnsw_glock(h);
    int32_t ep = h->entry;
    const int L = h->max_level;
    const int hold = l > L; /* q becomes the entry point: keep the lock */
    if (ep < 0) {           /* first element */
        h->entry = q;
        h->max_level = l;
        hnsw_gunlock(h);
        return;
    }
    if (!hold)
        hnsw_gunlock(h);

    /* Lines 5-7: greedy descent (ef = 1) through layers L..l+1. */
    hnsw_cand cur = {hnsw_dist(h, qv, ep), ep, 0};
    for (int lc = L; lc > l; lc--)
        cur = hnsw_greedy(h, qv, cur, lc, 1, s->nbr);
    s->ep[0] = cur;
    int nep = 1;

    /* Lines 8-17: on each layer min(L, l)..0, find efConstruction
     * candidates and link q to M of them (Algorithm 4). */
    const int top = l < L ? l : L;
    int nsel[HNSW_MAX_LEVEL + 1];
    for (int lc = top; lc >= 0; lc--) {
        int size = hnsw_search_layer(h, s, qv, nep, h->ef_construction, lc, 1);
        memcpy(s->ep, s->pool, (size_t)size * sizeof *s->ep); /* line 17: ep <- W */
        nep = size;
        hnsw_cand *pick = s->chosen + (size_t)lc * (size_t)h->M;
        int r = select_heuristic(h, s->ep, size, h->M, q, pick);
        nsel[lc] = r;
        int32_t *lq = hnsw_links(h, q, lc);
        hnsw_lock(&h->locks[q]);
        for (int j = 0; j < r; j++)
            lq[1 + j] = pick[j].id;
        lq[0] = r;
        hnsw_unlock(&h->locks[q]);
    }
    /* Then link back (lines 12-16), all layers after q's own lists are
     * complete. The paper links each layer before searching the next; the
     * result is the same with one thread (q is unreachable on the layers
     * still to search), but with several it matters: once q is linked on
     * layer lc, other inserts can reach q and descend from it, and would find
     * q's lower lists still empty (linking their new node to q alone), and
     * whatever they appended to q's lists would be overwritten when q sets
     * them. Linking last makes q visible only when it is complete. */
    for (int lc = top; lc >= 0; lc--) {
        const hnsw_cand *pick = s->chosen + (size_t)lc * (size_t)h->M;
        const int Mmax = lc == 0 ? h->M0 : h->M;
        for (int j = 0; j < nsel[lc]; j++)
            connect(h, s, pick[j].id, q, pick[j].d, lc, Mmax);
    }
    if (hold) { /* lines 18-19 */
        h->entry = q;
        h->max_level = l;
        hnsw_gunlock(h);
    }
}
