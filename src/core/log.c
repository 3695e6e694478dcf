/* Logging sink and progress lines. The library formats; the sink installed by
 * the caller decides where text goes (the library itself never prints). */
#include "xmc/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static xmc_log_fn sink_fn;
static void *sink_ctx;

void xmc_log_set_sink(xmc_log_fn fn, void *ctx)
{
    sink_fn = fn;
    sink_ctx = ctx;
}

void xmc_log(xmc_log_level level, const char *fmt, ...)
{
    if (!sink_fn)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sink_fn(sink_ctx, level, buf);
}

double xmc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* On a terminal a progress line overwrites the previous one; elsewhere (logs,
 * CI) progress appears as a plain line at most every 10 s. */
void xmc_log_stderr(void *ctx, xmc_log_level level, const char *msg)
{
    (void)ctx;
    static int tty = -1;
    static int pending; /* a '\r' line is on screen */
    static double last_plain;
    if (tty < 0)
        tty = isatty(2);
    if (level == XMC_LOG_DEBUG)
        return;
    if (level == XMC_LOG_PROGRESS) {
        if (tty) {
            fprintf(stderr, "\r\033[K%s", msg);
            pending = 1;
        } else {
            double t = xmc_now();
            if (t - last_plain >= 10.0) {
                fprintf(stderr, "%s\n", msg);
                last_plain = t;
            }
        }
        fflush(stderr);
        return;
    }
    if (pending) {
        fputc('\n', stderr);
        pending = 0;
    }
    fprintf(stderr, "%s%s\n", level == XMC_LOG_WARN ? "warning: " : "", msg);
    fflush(stderr);
}

static void fmt_duration(char *b, size_t n, double s)
{
    if (s < 0 || s > 1e8)
        snprintf(b, n, "?");
    else if (s < 60)
        snprintf(b, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(b, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void xmc_progress_start(xmc_progress *p, const char *what, const char *unit,
                        int64_t total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->what, sizeof p->what, "%s", what);
    snprintf(p->unit, sizeof p->unit, "%s", unit);
    p->total = total;
    p->t_start = p->t_last = xmc_now();
}

static void report(xmc_progress *p, const char *extra, xmc_log_level lvl)
{
    double el = xmc_now() - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32] = "", els[32];
    fmt_duration(els, sizeof els, el);
    if (p->total > 0 && rate > 0 && lvl == XMC_LOG_PROGRESS) {
        char d[24];
        fmt_duration(d, sizeof d, (double)(p->total - p->done) / rate);
        snprintf(eta, sizeof eta, " ETA %s", d);
    }
    if (p->total > 0)
        xmc_log(lvl, "%s %lld/%lld (%.0f%%) %.1f %s/s %s%s%s%s", p->what,
                (long long)p->done, (long long)p->total,
                100.0 * (double)p->done / (double)p->total, rate, p->unit, els, eta,
                extra ? "  " : "", extra ? extra : "");
    else
        xmc_log(lvl, "%s %lld %.1f %s/s %s%s%s", p->what, (long long)p->done, rate,
                p->unit, els, extra ? "  " : "", extra ? extra : "");
}

void xmc_progress_update(xmc_progress *p, int64_t done, const char *extra)
{
    p->done = done;
    double t = xmc_now();
    if (t - p->t_last < 0.1)
        return;
    p->t_last = t;
    report(p, extra, XMC_LOG_PROGRESS);
}

void xmc_progress_finish(xmc_progress *p, const char *extra)
{
    if (p->total > 0)
        p->done = p->total;
    report(p, extra, XMC_LOG_INFO);
}
