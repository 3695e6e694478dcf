// hnswlib_shim: the peer side of bench/ann.sh. Runs hnswlib (Debian
// libhnswlib-dev 0.6.2, header-only C++) on the vectors `xmc bench ann
// --dump DIR` wrote, with the same M / efConstruction / efSearch / k and the
// same threading (OpenMP: parallel addPoint, batch queries split over
// threads), and prints the same RESULT / BUILD lines as xmc for the table.
// Cosine runs as inner product on normalised copies (hnswlib's own advice).
//
// --xmc-index FILE (an index saved by `xmc bench ann --save`, same data and
// parameters) makes the comparison fair on a shared machine: xmc's searches
// (through libxmc's C API) and hnswlib's run interleaved in this process —
// batch A, batch B, A, B, ... and single queries alternating — and both
// get RESULT lines, so load spikes hit both sides alike. The index is
// opened after hnswlib's build, waiting up to --wait seconds for it to
// appear, so both builds may run at once (under the same load).
//
// COST lines: hnswlib's own counters per searchKnn, nodes expanded and
// neighbour-list entries scanned (an upper bound on distances computed),
// a cost per query independent of the machine's load.
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "xmc/hnsw.h"

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static bool read_raw(const std::string &path, void *dst, size_t bytes)
{
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    size_t got = std::fread(dst, 1, bytes, f);
    std::fclose(f);
    return got == bytes;
}

static void normalise(std::vector<float> &x, size_t d)
{
    for (size_t i = 0; i < x.size() / d; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * x[i * d + j];
        float sc = s > 0 ? (float)(1.0 / std::sqrt(s)) : 1.0f;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] *= sc;
    }
}

int main(int argc, char **argv)
{
    std::string dir = ".", data = "random", metric = "l2", efs = "10,20,40,80,160,320", xmcidx;
    size_t n = 0, nq = 1000, d = 64, M = 16, efc = 200, k = 10;
    int lat = 1000, reps = 5, seed = 1, wait = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--dir") dir = v;
        else if (a == "--data") data = v;
        else if (a == "--metric") metric = v;
        else if (a == "--ef") efs = v;
        else if (a == "--n") n = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--queries") nq = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--dim") d = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--M") M = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--ef-construction") efc = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--k") k = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--latency") lat = std::atoi(v.c_str());
        else if (a == "--reps") reps = std::atoi(v.c_str());
        else if (a == "--seed") seed = std::atoi(v.c_str());
        else if (a == "--threads") xmc_set_threads(std::atoi(v.c_str()));
        else if (a == "--xmc-index") xmcidx = v;
        else if (a == "--wait") wait = std::atoi(v.c_str());
        else {
            std::fprintf(stderr, "hnswlib_shim: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (n == 0 || k == 0 || reps < 1) {
        std::fprintf(stderr, "usage: hnswlib_shim --dir DIR --data NAME --n N --dim D [--queries Q "
                             "--metric l2|cosine|ip --M M --ef-construction E --ef LIST --k K]\n");
        return 2;
    }
    std::vector<float> x(n * d), q(nq * d);
    std::vector<int32_t> gt(nq * k);
    std::string p = dir + "/" + data;
    if (!read_raw(p + ".base.f32", x.data(), x.size() * 4) ||
        !read_raw(p + ".query.f32", q.data(), q.size() * 4) ||
        !read_raw(p + ".gt.i32", gt.data(), gt.size() * 4)) {
        std::fprintf(stderr, "hnswlib_shim: cannot read %s.{base.f32,query.f32,gt.i32} "
                             "(sizes from --n --queries --dim --k)\n", p.c_str());
        return 1;
    }
    hnswlib::SpaceInterface<float> *space;
    if (metric == "l2")
        space = new hnswlib::L2Space(d);
    else {
        if (metric == "cosine") {
            normalise(x, d);
            normalise(q, d);
        }
        space = new hnswlib::InnerProductSpace(d);
    }
    auto *index = new hnswlib::HierarchicalNSW<float>(space, n, M, efc, seed);
    double t0 = now();
    index->addPoint(x.data(), 0);
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 1; i < n; i++)
        index->addPoint(x.data() + i * d, i);
    double t_build = now() - t0;
    std::printf("[%s] hnswlib build %.1f s (%.0f vectors/s), threads %d\n", data.c_str(), t_build,
                n / t_build, omp_get_max_threads());
    std::printf("BUILD hnswlib %s %.2f\n", data.c_str(), t_build);
    // The xmc index is opened after hnswlib's build, so an `xmc bench ann
    // --save` started beside this one (both builds under the same load) may
    // still be running: wait for its file (written to a temporary name and
    // renamed, so it appears complete), up to --wait seconds.
    xmc_hnsw *xi = nullptr;
    if (!xmcidx.empty()) {
        for (int s = 0; s < wait && !std::filesystem::exists(xmcidx); s += 5)
            std::this_thread::sleep_for(std::chrono::seconds(5));
        xmc_error err = {};
        if (xmc_hnsw_load(&xi, xmcidx.c_str(), XMC_HNSW_LOAD_MMAP, &err) != XMC_OK ||
            xmc_hnsw_size(xi) != (int64_t)n || xmc_hnsw_dim(xi) != (int64_t)d) {
            std::fprintf(stderr, "hnswlib_shim: %s: %s\n", xmcidx.c_str(),
                         err.code ? err.msg : "size or dimension differs from --n/--dim");
            return 1;
        }
    }
    std::vector<int64_t> ids(nq * k);
    size_t pos = 0;
    while (pos < efs.size()) {
        size_t c = efs.find(',', pos);
        if (c == std::string::npos)
            c = efs.size();
        size_t ef = std::strtoull(efs.substr(pos, c - pos).c_str(), nullptr, 10);
        pos = c + 1;
        ef = std::max(ef, k);
        index->setEf(ef);
        // side 0: hnswlib, side 1: xmc (when --xmc-index), interleaved.
        int sides = xi ? 2 : 1;
        // hnswlib counts, per searchKnn, the nodes expanded (hops) and the
        // neighbour-list entries scanned (an upper bound on distances):
        // a cost per query that does not depend on the machine's load.
        index->metric_hops = 0;
        index->metric_distance_computations = 0;
        std::vector<double> tb[2], tl[2];
        std::vector<int64_t> xids(nq * k);
        for (int r = 0; r < reps; r++)
            for (int sd = 0; sd < sides; sd++) {
                t0 = now();
                if (sd == 0) {
#pragma omp parallel for schedule(dynamic, 4)
                    for (size_t i = 0; i < nq; i++) {
                        auto res = index->searchKnn(q.data() + i * d, k);
                        size_t j = res.size();
                        for (size_t m = j; m < k; m++)
                            ids[i * k + m] = -1;
                        while (!res.empty()) { // max-heap: farthest first
                            ids[i * k + --j] = (int64_t)res.top().second;
                            res.pop();
                        }
                    }
                } else {
                    xmc_error err = {};
                    xmc_hnsw_search(xi, q.data(), (int64_t)nq, (int64_t)d, (int)k, (int)ef,
                                    xids.data(), nullptr, &err);
                }
                tb[sd].push_back(now() - t0);
            }
        for (int i = 0; i < lat; i++)
            for (int sd = 0; sd < sides; sd++) {
                const float *qi = q.data() + (i % nq) * d;
                t0 = now();
                if (sd == 0) {
                    auto res = index->searchKnn(qi, k);
                } else {
                    int64_t one[1024];
                    xmc_error err = {};
                    xmc_hnsw_search(xi, qi, 1, (int64_t)d, (int)k, (int)ef, one, nullptr, &err);
                }
                tl[sd].push_back(now() - t0);
            }
        double nsearch = (double)reps * (double)nq + lat;
        std::printf("COST hnswlib %s %zu %.1f %.1f\n", data.c_str(), ef, index->metric_hops / nsearch,
                    index->metric_distance_computations / nsearch);
        for (int sd = 0; sd < sides; sd++) {
            const int64_t *got = sd == 0 ? ids.data() : xids.data();
            std::sort(tb[sd].begin(), tb[sd].end());
            double qps = nq / tb[sd][0]; // best of reps, as xmc bench ann
            size_t hit = 0;
            for (size_t i = 0; i < nq; i++)
                for (size_t a = 0; a < k; a++)
                    for (size_t b = 0; b < k; b++)
                        if (got[i * k + a] == gt[i * k + b]) {
                            hit++;
                            break;
                        }
            double recall = (double)hit / (double)(nq * k);
            double p50 = NAN, p99 = NAN;
            if (lat > 0) {
                std::sort(tl[sd].begin(), tl[sd].end());
                p50 = 1e6 * tl[sd][lat / 2];
                p99 = 1e6 * tl[sd][(size_t)((lat - 1) * 0.99)];
            }
            std::printf("RESULT %s %s %zu %.4f %.0f %.1f %.1f\n", sd == 0 ? "hnswlib" : "xmc",
                        data.c_str(), ef, recall, qps, p50, p99);
        }
        std::fflush(stdout);
    }
    xmc_hnsw_free(xi);
    delete index;
    delete space;
    return 0;
}
