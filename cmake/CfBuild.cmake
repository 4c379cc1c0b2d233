# CfBuild.cmake -- compiler flags, sanitizers and test registration shared by every
# directory of the project.
#
# cf_target_defaults(<target>)  gives a target the project's language level (C11 with the
#                               platform's POSIX/BSD declarations visible: -std=gnu11),
#                               warnings, -pthread and sanitizer flags (all PRIVATE:
#                               consumers of the installed library get none of them).
# cf_add_test(<name> COMMAND <target-or-program> [args...] [TIMEOUT s] [LABELS l...]
#             [RUN_SERIAL])     registers a ctest entry with the sanitizer runtime options
#                               and, for the project's own executables, the launcher that
#                               ThreadSanitizer needs on this machine (see below).
#
# Sanitizer runtimes are checked when the build is configured, by building and running a
# tiny threaded program, so a machine that cannot run them fails at configure time with the
# reason instead of failing every test.  gcc 12's ThreadSanitizer aborts with "unexpected
# memory mapping" on kernels with more mmap ASLR entropy (vm.mmap_rnd_bits above 28, as
# on newer distribution kernels); when the probe shows a failure that `setarch -R`
# (util-linux, essential on Debian) cures, the tests of that build run under setarch.

if(NOT CF_SANITIZE MATCHES "^(|thread|address)$")
    message(FATAL_ERROR "CF_SANITIZE must be empty, 'thread' or 'address', not '${CF_SANITIZE}'")
endif()

set(CF_SANITIZE_FLAGS "")
if(CF_SANITIZE STREQUAL "thread")
    set(CF_SANITIZE_FLAGS -fsanitize=thread)
elseif(CF_SANITIZE STREQUAL "address")
    set(CF_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
                          -fno-omit-frame-pointer)
endif()

set(CF_TEST_ENVIRONMENT
    "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

# Builds a small threaded program with the sanitizer and runs it: directly, and for
# ThreadSanitizer under setarch -R if directly failed.  Sets CF_TEST_LAUNCHER to what worked.
function(cf_probe_sanitizer)
    set(dir "${PROJECT_BINARY_DIR}/CMakeFiles/cf_sanitizer_probe")
    file(WRITE "${dir}/probe.c" [=[
#include <pthread.h>
#include <stdlib.h>
static void *work(void *arg) { return arg; }
int main(void)
{
    pthread_t t;
    int *p = malloc(sizeof *p);
    if (p == NULL || pthread_create(&t, NULL, work, p) != 0)
        return 1;
    pthread_join(t, NULL);
    free(p);
    return 0;
}
]=])
    try_compile(built "${dir}/build" "${dir}/probe.c"
                COMPILE_DEFINITIONS ${CF_SANITIZE_FLAGS} -pthread
                LINK_OPTIONS ${CF_SANITIZE_FLAGS} -pthread
                OUTPUT_VARIABLE build_log
                COPY_FILE "${dir}/probe")
    if(NOT built)
        message(FATAL_ERROR "CF_SANITIZE=${CF_SANITIZE}: the compiler cannot build with "
                            "${CF_SANITIZE_FLAGS}:\n${build_log}")
    endif()
    execute_process(COMMAND "${dir}/probe" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                    ERROR_VARIABLE out)
    set(launcher "")
    if(NOT rc EQUAL 0 AND CF_SANITIZE STREQUAL "thread")
        find_program(CF_SETARCH setarch)
        if(CF_SETARCH)
            set(launcher "${CF_SETARCH}" "${CMAKE_HOST_SYSTEM_PROCESSOR}" -R)
            execute_process(COMMAND ${launcher} "${dir}/probe" RESULT_VARIABLE rc
                            OUTPUT_VARIABLE out2 ERROR_VARIABLE out2)
            string(APPEND out "\nunder ${launcher}:\n${out2}")
        endif()
    endif()
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "CF_SANITIZE=${CF_SANITIZE}: a sanitized program does not run "
                            "on this machine:\n${out}")
    endif()
    if(launcher)
        list(JOIN launcher " " shown)
        message(STATUS "ThreadSanitizer needs ASLR off here: tests run under ${shown}")
    else()
        message(STATUS "Sanitizer ${CF_SANITIZE} runs here without a launcher")
    endif()
    set(CF_TEST_LAUNCHER "${launcher}" PARENT_SCOPE)
endfunction()

set(CF_TEST_LAUNCHER "")
if(CF_SANITIZE)
    cf_probe_sanitizer()
endif()

function(cf_target_defaults target)
    set_target_properties(${target} PROPERTIES
        C_STANDARD 11
        C_STANDARD_REQUIRED ON
        C_EXTENSIONS ON)
    target_compile_options(${target} PRIVATE
        $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra $<$<BOOL:${CF_WERROR}>:-Werror>>)
    # FindThreads adds nothing when libc has pthreads (glibc >= 2.34); -pthread still
    # matters for the compiler (it defines _REENTRANT and links right on older systems).
    target_compile_options(${target} PRIVATE -pthread)
    target_link_options(${target} PRIVATE -pthread)
    if(CF_SANITIZE_FLAGS)
        target_compile_options(${target} PRIVATE ${CF_SANITIZE_FLAGS})
        target_link_options(${target} PRIVATE ${CF_SANITIZE_FLAGS})
    endif()
endfunction()

function(cf_add_test name)
    cmake_parse_arguments(PARSE_ARGV 1 arg "RUN_SERIAL" "TIMEOUT" "COMMAND;LABELS")
    if(NOT arg_COMMAND)
        message(FATAL_ERROR "cf_add_test(${name}): COMMAND is required")
    endif()
    if(NOT arg_TIMEOUT)
        set(arg_TIMEOUT 60)
    endif()
    list(POP_FRONT arg_COMMAND program)
    if(TARGET ${program})
        set(program ${CF_TEST_LAUNCHER} $<TARGET_FILE:${program}>)
    endif()
    add_test(NAME ${name} COMMAND ${program} ${arg_COMMAND})
    set_tests_properties(${name} PROPERTIES
        TIMEOUT ${arg_TIMEOUT}
        ENVIRONMENT "${CF_TEST_ENVIRONMENT}")
    if(arg_LABELS)
        set_tests_properties(${name} PROPERTIES LABELS "${arg_LABELS}")
    endif()
    if(arg_RUN_SERIAL)
        set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
    endif()
endfunction()
