/**
 * What the benchmark processes share: the profiling markers and the CPU
 * clock of the pool process's main thread.
 *
 * @module
 */

/**
 * Profiling markers: each spins for 3 ms so that the sampler sees it, and
 * `_profile_top.ts --window` cuts profiles to the time between them (it finds
 * them by these function names). Called around a timed pass only when
 * profiling, outside the timed span.
 */
export function benchWindowStart(): void {
  const end = performance.now() + 3;
  while (performance.now() < end) { /* spin */ }
}

/** See {@link benchWindowStart}. */
export function benchWindowEnd(): void {
  const end = performance.now() + 3;
  while (performance.now() < end) { /* spin */ }
}

/**
 * CPU time of this process's main thread (ms), where the pool runs: less
 * moved by other users' load than wall time. Linux only; NaN elsewhere.
 */
export function mainThreadCpuMs(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/self/schedstat").split(" ")[0]) /
      1e6;
  } catch {
    return NaN;
  }
}
