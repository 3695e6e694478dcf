/* Core internals shared by the library's modules (not part of the API). */
#ifndef XMC_CORE_INTERNAL_H
#define XMC_CORE_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "xmc/core.h"

/* Parse n bytes of JSON (need not be NUL-terminated) into *out (free with
 * cJSON_Delete). XMC_OK, XMC_ENOMEM when an allocation failed during the
 * parse, else XMC_EFORMAT; *out is NULL on failure. The caller reports the
 * error: only it knows the path and what was expected. cJSON's allocations
 * go through xmc_malloc (json.c), so anything cJSON returns, cJSON_Print
 * output included, is freed with cJSON_free or xmc_free. */
int xmc_json_parse(const char *text, size_t n, cJSON **out);

/* Read the file at path and parse it into a JSON object, *out (free with
 * cJSON_Delete; NULL on failure). Errors name the path: the file's own
 * (xmc_read_file), XMC_ENOMEM, or XMC_EFORMAT "expected a JSON object". */
int xmc_json_read_object(const char *path, cJSON **out, xmc_error *err);

#endif
