/*
 * compat.c lets a worker linked against a current glibc start on the oldest
 * glibc trtd supports (2.27, JetPack 4.6 / Ubuntu 18.04). It is linked into
 * the shipped cgo workers only (packaging/build-worker.sh); docs/PACKAGING.md
 * says why this approach and what it covers.
 *
 *  - Every symbol listed in wrap.txt is redirected (-Wl,--wrap) to a tail
 *    jump into its newest version at or below the floor; the generated
 *    wrap.inc holds one TRTD_WRAP(symbol, "GLIBC_x.y") line per symbol.
 *  - __libc_start_main: glibc 2.34 made crt1.o pass no init function and
 *    run the program's constructors itself. Linked against the old version,
 *    an old glibc would then run none, so this wrapper passes an init that
 *    runs _init and .init_array as glibc < 2.34's __libc_csu_init did. A
 *    newer glibc, given an init, calls it instead of its own (a "legacy
 *    program"), so constructors run exactly once on both.
 *  - __libc_single_threaded (GLIBC_2.32, no older version): libstdc++ reads
 *    it to skip atomic reference counts. A constant 0 here keeps them atomic.
 *  - arc4random (GLIBC_2.36, no older version): random_device's fallback,
 *    served from getrandom (GLIBC_2.25).
 *  - pthread_cond_clockwait (GLIBC_2.30, no older version): libstdc++'s
 *    condition_variable waits on the steady clock with it. The deadline is
 *    turned into a CLOCK_REALTIME one and handed to pthread_cond_timedwait,
 *    as libstdc++ itself does where the call is missing (a wall-clock jump
 *    during the wait moves the wake-up; the caller re-checks its clock).
 */
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#if defined(__x86_64__)
#define TRTD_TAILJMP(sym) "jmp " sym "@PLT"
#elif defined(__aarch64__)
#define TRTD_TAILJMP(sym) "b " sym
#else
#error "compat.c: unsupported architecture"
#endif

#define TRTD_WRAP(name, ver)                                              \
	__asm__(".symver __trtd_old_" #name ", " #name "@" ver "\n"           \
		".pushsection .text\n"                                            \
		".globl __wrap_" #name "\n"                                       \
		".type __wrap_" #name ", %function\n"                             \
		"__wrap_" #name ":\n\t" TRTD_TAILJMP("__trtd_old_" #name) "\n"    \
		".size __wrap_" #name ", .-__wrap_" #name "\n"                    \
		".popsection\n");

#include "wrap.inc"

/* __libc_start_main */

typedef int (*trtd_main_fn)(int, char **, char **);
typedef void (*trtd_init_fn)(int, char **, char **);

extern int __trtd_old___libc_start_main(trtd_main_fn, int, char **, trtd_init_fn,
	void (*)(void), void (*)(void), void *);
__asm__(".symver __trtd_old___libc_start_main, __libc_start_main@" TRTD_LSM_VERSION);

extern trtd_init_fn __init_array_start[] __attribute__((visibility("hidden")));
extern trtd_init_fn __init_array_end[] __attribute__((visibility("hidden")));
extern void _init(void);

static void trtd_init(int argc, char **argv, char **envp) {
	_init();
	size_t n = (size_t)(__init_array_end - __init_array_start);
	for (size_t i = 0; i < n; i++) {
		__init_array_start[i](argc, argv, envp);
	}
}

int __wrap___libc_start_main(trtd_main_fn main_fn, int argc, char **argv, trtd_init_fn init,
	void (*fini)(void), void (*rtld_fini)(void), void *stack_end) {
	(void)init;
	(void)fini; /* the dynamic linker runs .fini_array on every glibc */
	return __trtd_old___libc_start_main(main_fn, argc, argv, trtd_init, NULL, rtld_fini, stack_end);
}

/* __libc_single_threaded */

char __wrap___libc_single_threaded = 0;

/* arc4random */

extern ssize_t getrandom(void *buf, size_t len, unsigned int flags);

uint32_t __wrap_arc4random(void) {
	uint32_t v = 0;
	size_t got = 0;
	while (got < sizeof v) {
		ssize_t n = getrandom((char *)&v + got, sizeof v - got, 0);
		if (n > 0) {
			got += (size_t)n;
		}
	}
	return v;
}

/* pthread_cond_clockwait */

int __wrap_pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock,
	const struct timespec *abstime) {
	if (clock == CLOCK_REALTIME) {
		return pthread_cond_timedwait(cond, mutex, abstime);
	}
	if (clock != CLOCK_MONOTONIC) {
		return EINVAL;
	}
	struct timespec now_mono, now_real, rt;
	clock_gettime(CLOCK_MONOTONIC, &now_mono);
	clock_gettime(CLOCK_REALTIME, &now_real);
	long long ns = (long long)(abstime->tv_sec - now_mono.tv_sec) * 1000000000LL +
		(abstime->tv_nsec - now_mono.tv_nsec);
	if (ns < 0) {
		ns = 0;
	}
	ns += (long long)now_real.tv_nsec;
	rt.tv_sec = now_real.tv_sec + (time_t)(ns / 1000000000LL);
	rt.tv_nsec = (long)(ns % 1000000000LL);
	return pthread_cond_timedwait(cond, mutex, &rt);
}
