/**
 * Suggestions for misspelt names: option names in `options.ts`, flags on the
 * command line (`_args.ts`).
 *
 * @module
 */

/**
 * Edits (insert, delete, replace, swap two neighbours) from `a` to `b`, or
 * `max + 1` when clearly more.
 */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d[i] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        d[0]![j] = j;
        continue;
      }
      let best = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name `key` was most likely meant to be: the same but for case, a
 * prefix either way, or a typo or two away.
 */
export function didYouMean(
  key: string,
  known: readonly string[],
): string | undefined {
  const lower = key.toLowerCase();
  const max = Math.max(1, Math.floor(key.length / 4));
  let best: string | undefined;
  let bestDistance = max + 1;
  for (const name of known) {
    const candidate = name.toLowerCase();
    if (candidate === lower) return name;
    if (candidate.startsWith(lower) || lower.startsWith(candidate)) {
      return name;
    }
    const d = distance(lower, candidate, max);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}
