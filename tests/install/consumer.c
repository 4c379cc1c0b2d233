/*
 * consumer.c -- a program outside the project, built against an installed cfutures.
 *
 * It proves that the installed header and library agree (same version) and that calls
 * resolve into the library.  The find_package build compiles it twice: against the shared
 * library, and against the static one with CF_EXPECT_STATIC, where the exported target must
 * have brought CF_STATIC_DEFINE along.
 */
#include <cfutures.h>
#include <stdio.h>
#include <string.h>

#if defined(CF_EXPECT_STATIC) != defined(CF_STATIC_DEFINE)
#error "CF_STATIC_DEFINE must come with cfutures::cfutures_static and only with it"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

int main(int argc, char **argv)
{
    const char *header = STR(CF_VERSION_MAJOR) "." STR(CF_VERSION_MINOR) "." STR(CF_VERSION_PATCH);
    const char *text = cf_strerror(CF_ETIMEDOUT);

    if (strcmp(cf_version(), header) != 0) {
        fprintf(stderr, "library version %s, header version %s\n", cf_version(), header);
        return 1;
    }
    if (text[0] == '\0' || strcmp(text, cf_strerror(1)) == 0) {
        fprintf(stderr, "cf_strerror(CF_ETIMEDOUT) is '%s'\n", text);
        return 1;
    }
    printf("%s: cfutures %s, CF_ETIMEDOUT is \"%s\"\n", argc > 0 ? argv[0] : "consumer",
           cf_version(), text);
    return 0;
}
