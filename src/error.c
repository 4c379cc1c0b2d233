/*
 * error.c -- the error table's strings and the library version.
 *
 * Both come from CF_ERRNO_MAP in cfutures.h, so a code, its name and its text can never
 * disagree.  No state, no locks.
 */
#include "cfutures.h"

#define CF__STR2(x) #x
#define CF__STR(x) CF__STR2(x)

const char *cf_version(void)
{
    return CF__STR(CF_VERSION_MAJOR) "." CF__STR(CF_VERSION_MINOR) "." CF__STR(CF_VERSION_PATCH);
}

const char *cf_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define CF__ERRNO_TEXT(name, value, text) case CF_E##name: return text;
        CF_ERRNO_MAP(CF__ERRNO_TEXT)
#undef CF__ERRNO_TEXT
    }
    return "unknown error";
}

const char *cf_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define CF__ERRNO_NAME(name, value, text) case CF_E##name: return #name;
        CF_ERRNO_MAP(CF__ERRNO_NAME)
#undef CF__ERRNO_NAME
    }
    return "UNKNOWN";
}
