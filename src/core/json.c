/* cJSON on xmc's accounted allocator, so its memory shows in
 * xmc_mem_current/peak and xmc_mem_fail_after reaches its allocations.
 *
 * cJSON's hooks are process-global and must be installed before its first
 * allocation anywhere (library, CLI, tests): a block from libc malloc freed
 * by xmc_free would crash. So a constructor installs them before main
 * (__attribute__((constructor)) is a GCC/Clang extension). A constructor in
 * an unreferenced member of a static archive is dropped by the linker, so
 * this object must be linked: every parse site calls xmc_json_parse, and
 * CMakeLists.txt also forces xmc_json_hooks_install in with --undefined.
 *
 * cJSON returns NULL both for bad JSON and for out of memory; a thread-local
 * flag set by the malloc hook tells the two apart. */
#include "core/internal.h"

#include "xmc/core.h"

static _Thread_local unsigned alloc_failures;

static void *json_malloc(size_t n)
{
    void *p = xmc_malloc(n);
    if (!p)
        alloc_failures++;
    return p;
}

static void json_free(void *p) { xmc_free(p); }

/* Not static: the name CMakeLists.txt forces the linker to keep. */
void xmc_json_hooks_install(void);

__attribute__((constructor)) void xmc_json_hooks_install(void)
{
    cJSON_Hooks h = {json_malloc, json_free};
    cJSON_InitHooks(&h);
}

int xmc_json_parse(const char *text, size_t n, cJSON **out)
{
    unsigned f0 = alloc_failures;
    *out = cJSON_ParseWithLength(text, n);
    if (*out)
        return XMC_OK;
    return alloc_failures != f0 ? XMC_ENOMEM : XMC_EFORMAT;
}

unsigned xmc_json_failures(void) { return alloc_failures; }

int xmc_json_read_object(const char *path, cJSON **out, xmc_error *err)
{
    *out = NULL;
    char *d;
    size_t n;
    int rc = xmc_read_file(path, &d, &n, err);
    if (rc != XMC_OK)
        return rc;
    rc = xmc_json_parse(d, n, out);
    xmc_free(d);
    if (rc == XMC_ENOMEM)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    if (rc != XMC_OK || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return XMC_ERR(err, XMC_EFORMAT, path, 0, "expected a JSON object");
    }
    return XMC_OK;
}
