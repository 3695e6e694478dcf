/* Body of the two vector passes of the parallel texts reader (texts.c),
 * included once per ISA (texts.c: 16-byte vectors; texts_avx2.c: 32-byte)
 * after defining TS_W (16 or 32), TSCAN_NAME, TFILL_NAME, TSCAN1_NAME and,
 * where the ISA has a byte movemask, `static inline uint64_t
 * nl_mask64(const char *p)` (bit i set when p[i] is '\n') with TS_NL_MASK
 * (without it, no TSCAN1_NAME: the one-pass variant). texts.c says what
 * the passes do. Not a public header.
 *
 * Why two widths: on AVX2 machines 32-byte compares halve the vector
 * instructions of both passes (pass 1: two loads per 64 bytes instead of
 * four; pass 2: two movemasks instead of four), as for the sparse readers'
 * pass 1 (rowscan.h): on the 146 MB texts of the 1M split, one core, pass 1
 * 17 ms against 21 ms and pass 2 20 ms against 22 ms (~6 of the load's
 * ~0.48 CPU-s). */

typedef unsigned char ts_vec __attribute__((vector_size(TS_W)));

/* Pass 1 of a chunk: its '\n' count and whether it holds a NUL, a '\r' or
 * invalid UTF-8. Lane counters are flushed before they can overflow
 * ((64 / TS_W) x 63 < 256). */
void TSCAN_NAME(const char *buf, xmc_tchunk *c)
{
    const char *p = buf + c->b, *e = buf + c->e;
    int64_t nl = 0;
    ts_vec odd = {0}, hi = {0};
    const ts_vec zero = {0};
    const ts_vec vn = zero + '\n', vr = zero + '\r';
    while (p + 64 <= e) {
        ts_vec acc = {0};
        for (int k = 0; k < 63 && p + 64 <= e; k++, p += 64) {
            for (int j = 0; j < 64; j += TS_W) {
                ts_vec w;
                memcpy(&w, p + j, TS_W);
                acc -= (ts_vec)(w == vn);
                odd |= (ts_vec)(w == zero) | (ts_vec)(w == vr);
                hi |= w;
            }
        }
        for (int i = 0; i < TS_W; i++)
            nl += acc[i];
    }
    int o = 0, h = 0;
    for (int i = 0; i < TS_W; i++) {
        o |= odd[i];
        h |= hi[i] & 0x80;
    }
    for (; p < e; p++) {
        nl += *p == '\n';
        o |= *p == '\0' || *p == '\r';
        h |= (unsigned char)*p & 0x80;
    }
    if (!o && h && xmc_utf8_invalid_at(buf + c->b, c->e - c->b) != (size_t)-1)
        o = 1;
    c->lines = nl;
    c->odd = o;
}

/* Pass 2: the '\n' positions of 64 bytes at a time as a bit mask, one
 * offset per set bit (a per-line memchr cost a fifth of the read on lines
 * of ~150 bytes); each '\n' becomes NUL. */
void TFILL_NAME(char *buf, const xmc_tchunk *c, int64_t *off)
{
    int64_t i = c->lines;
    size_t r = c->b, e = c->e;
    if (r < e)
        off[i++] = (int64_t)r;
#ifdef TS_NL_MASK
    for (; r + 64 <= e; r += 64) {
        uint64_t m = nl_mask64(buf + r);
        while (m) {
            size_t k = r + (size_t)__builtin_ctzll(m);
            buf[k] = '\0';
            if (k + 1 < e)
                off[i++] = (int64_t)k + 1;
            m &= m - 1;
        }
    }
#endif
    for (; r < e; r++)
        if (buf[r] == '\n') {
            buf[r] = '\0';
            if (r + 1 < e)
                off[i++] = (int64_t)r + 1;
        }
    /* The line after the chunk's last '\n' is the next chunk's first (its
     * offset written there) or off[n] (set by the caller). A last line
     * without '\n' ends at the spare byte. */
    if (e > c->b && buf[e - 1] != '\0')
        buf[e] = '\0';
}

#ifdef TS_NL_MASK
/* A '\n' at k of TSCAN1_NAME's chunk [.., e): becomes NUL, and the next
 * line's start goes to tmp (the chunk's last byte: *last instead).
 * Returns 0, writing nothing, when tmp is full (the chunk then takes pass
 * 2). */
static inline int ts_line_end(char *buf, size_t k, size_t e, int64_t *tmp, int64_t *nt,
                              int64_t cap, int *last)
{
    if (k + 1 < e) {
        if (*nt == cap)
            return 0;
        tmp[(*nt)++] = (int64_t)k + 1;
    } else {
        *last = 1;
    }
    buf[k] = '\0';
    return 1;
}

/* Passes 1 and 2 in one (TSCAN1_NAME), for the common file: as pass 1,
 * and as pass 2 into c->tmp instead of the final offsets (unknown before
 * the counts of the earlier chunks), which the caller then copies: one
 * read of the texts instead of two. Validating after the '\n' became NUL
 * is the same: both are single ASCII bytes, never continuations. */
void TSCAN1_NAME(char *buf, xmc_tchunk *c)
{
    size_t r = c->b;
    const size_t e = c->e;
    int64_t nl = 0, nt = 0;
    int64_t *tmp = c->tmp;
    const int64_t cap = c->cap;
    int full = cap < 1, last = 0;
    ts_vec odd = {0}, hi = {0};
    const ts_vec zero = {0};
    const ts_vec vr = zero + '\r';
    if (r < e && !full)
        tmp[nt++] = (int64_t)r;
    for (; r + 64 <= e; r += 64) {
        for (int j = 0; j < 64; j += TS_W) {
            ts_vec w;
            memcpy(&w, buf + r + j, TS_W);
            odd |= (ts_vec)(w == zero) | (ts_vec)(w == vr);
            hi |= w;
        }
        uint64_t m = nl_mask64(buf + r);
        nl += __builtin_popcountll(m);
        for (; m && !full; m &= m - 1)
            full = !ts_line_end(buf, r + (size_t)__builtin_ctzll(m), e, tmp, &nt, cap, &last);
    }
    int o = 0, h = 0;
    for (int i = 0; i < TS_W; i++) {
        o |= odd[i];
        h |= hi[i] & 0x80;
    }
    for (; r < e; r++) {
        const char ch = buf[r];
        o |= ch == '\0' || ch == '\r';
        h |= (unsigned char)ch & 0x80;
        if (ch != '\n')
            continue;
        nl++;
        if (!full)
            full = !ts_line_end(buf, r, e, tmp, &nt, cap, &last);
    }
    c->nt = nt;
    c->last = last;
    if (full) { /* the offsets do not fit: as read, for pass 2 */
        xmc_tchunk_restore(buf, c);
        c->nt = 0;
    }
    if (!o && h &&
        xmc_utf8_invalid_at(buf + c->b + c->vskip_b, c->e - c->vskip_e - c->b - c->vskip_b) !=
            (size_t)-1)
        o = 1;
    c->lines = nl;
    c->odd = o;
}
#endif
