/*
 * The check harness of the C (and C++) test programs in tests/c/: header-only, everything
 * static, so each program that includes it gets its own counters.
 *
 *   CHECK(cond, "name %d", ...)            one check; the name is a printf format
 *   CHECK_STATUS(name, call, want, w...)   the call returns `want` and, for an error,
 *                                          da3_last_error_message() contains every word w
 *   CHECK_OK(name, call)                   the call returns DA3_OK
 *   CHECK_FAILS(name, failed, w...)        a call that reports failure by its value (NULL, 0)
 *                                          failed, and the message contains every word w
 *   check_skip("group '%s': ...", ...)     a group of checks that could not run
 *   check_give_up("why %s", ...)           a failure that ends the program: returns its status
 *   return check_summary();                prints "N passed, M failed, K skipped" (the line
 *                                          tests/c_api.rs reads), returns the exit status
 *
 * Each check prints "ok      NAME" or "FAIL    NAME: why (last message: "...")". The macros
 * evaluate the call before the message is read, so the message is the call's own. Works as
 * C11 and as C++11 or later under -Wall -Wextra -Werror -pedantic (gcc and clang).
 */
#ifndef DA3_TESTS_CHECK_H
#define DA3_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "da3.h"

#if defined(__GNUC__) || defined(__clang__)
#define CHECK_PRINTF_LIKE(format_index, first_arg) \
    __attribute__((format(printf, format_index, first_arg)))
#else
#define CHECK_PRINTF_LIKE(format_index, first_arg)
#endif

static int check_passed, check_failed, check_skipped;

/* Prints the failure line of check `name`: why it failed and the thread's last error. */
static inline void check_print_failure(const char *name, const char *why) {
    check_failed++;
    printf("FAIL    %s%s%s (last message: \"%s\")\n", name, why ? ": " : "", why ? why : "",
           da3_last_error_message());
}

static inline void check_print_pass(const char *name) {
    check_passed++;
    printf("ok      %s\n", name);
}

/* Records one check whose name is printf-formatted; returns `ok`. */
static inline CHECK_PRINTF_LIKE(2, 3) int check_that(int ok, const char *name_format, ...) {
    char name[1024];
    va_list args;
    va_start(args, name_format);
    vsnprintf(name, sizeof name, name_format, args);
    va_end(args);
    if (ok) {
        check_print_pass(name);
    } else {
        check_print_failure(name, NULL);
    }
    return ok;
}

/* The words (NULL-terminated) that da3_last_error_message() lacks: the first one, or NULL. */
static inline const char *check_missing_word(va_list words) {
    const char *message = da3_last_error_message();
    for (const char *word = va_arg(words, const char *); word != NULL;
         word = va_arg(words, const char *)) {
        if (strstr(message, word) == NULL) {
            return word;
        }
    }
    return NULL;
}

/* `got == want` and, when `want` is an error, the message holds every word of the
 * NULL-terminated list that follows. Returns whether the check passed. */
static inline int check_status_words(da3_status got, da3_status want, const char *name, ...) {
    char why[512];
    if (got != want) {
        snprintf(why, sizeof why, "got %s, want %s", da3_status_name((int)got),
                 da3_status_name((int)want));
        check_print_failure(name, why);
        return 0;
    }
    if (want != DA3_OK) {
        va_list words;
        va_start(words, name);
        const char *missing = check_missing_word(words);
        va_end(words);
        if (missing != NULL) {
            snprintf(why, sizeof why, "message lacks \"%s\"", missing);
            check_print_failure(name, why);
            return 0;
        }
    }
    check_print_pass(name);
    return 1;
}

/* `failed` (the call returned its failure value) and the message holds every word of the
 * NULL-terminated list that follows. Returns whether the check passed. */
static inline int check_failed_words(int failed, const char *name, ...) {
    if (!failed) {
        check_print_failure(name, "call did not fail");
        return 0;
    }
    va_list words;
    va_start(words, name);
    const char *missing = check_missing_word(words);
    va_end(words);
    if (missing != NULL) {
        char why[512];
        snprintf(why, sizeof why, "message lacks \"%s\"", missing);
        check_print_failure(name, why);
        return 0;
    }
    check_print_pass(name);
    return 1;
}

#define CHECK(cond, ...) check_that((cond) ? 1 : 0, __VA_ARGS__)
#define CHECK_STATUS(name, call, want, ...) \
    check_status_words((call), (want), (name), __VA_ARGS__, (const char *)NULL)
#define CHECK_OK(name, call) check_status_words((call), DA3_OK, (name), (const char *)NULL)
#define CHECK_FAILS(name, failed, ...) \
    check_failed_words((failed) ? 1 : 0, (name), __VA_ARGS__, (const char *)NULL)

/* A group of checks that could not run; the text follows "skipped ". */
static inline CHECK_PRINTF_LIKE(1, 2) void check_skip(const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("skipped ");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    check_skipped++;
}

/* Prints the closing line; returns the program's exit status (1 on any failure). */
static inline int check_summary(void) {
    printf("%d passed, %d failed, %d skipped\n", check_passed, check_failed, check_skipped);
    return check_failed == 0 ? 0 : 1;
}

/* A failure after which the program cannot go on: records it, returns check_summary(). */
static inline CHECK_PRINTF_LIKE(1, 2) int check_give_up(const char *format, ...) {
    char why[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(why, sizeof why, format, args);
    va_end(args);
    check_print_failure(why, NULL);
    return check_summary();
}

#endif /* DA3_TESTS_CHECK_H */
