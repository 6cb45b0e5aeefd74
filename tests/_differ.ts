/**
 * Compares two values deeply, as the codec tests need: prototypes, `-0`,
 * holes, shared and circular references, Blob bytes, typed array bytes.
 *
 * @module
 */
/** Describes a difference between `a` and `b`, or returns `undefined`. */
export async function differ(
  a: unknown,
  b: unknown,
  path = "value",
  pairs = new Map<object, object>(),
): Promise<string | undefined> {
  if (typeof a !== typeof b) {
    return `${path}: ${typeof a} vs ${typeof b}`;
  }
  if (typeof a !== "object" || a === null || b === null) {
    return Object.is(a, b)
      ? undefined
      : `${path}: ${String(a)} vs ${String(b)}`;
  }
  const x = a as object;
  const y = b as object;
  // Shared and circular references must pair up the same way.
  const paired = pairs.get(x);
  if (paired !== undefined) {
    return paired === y ? undefined : `${path}: identity differs`;
  }
  pairs.set(x, y);
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) {
    return `${path}: prototype ${x.constructor?.name} vs ${y.constructor?.name}`;
  }
  const tag = Object.prototype.toString.call(x);
  if (tag !== Object.prototype.toString.call(y)) return `${path}: tag`;
  if (x instanceof Blob) {
    const [bx, by] = [await x.bytes(), await (y as Blob).bytes()];
    if (x.type !== (y as Blob).type) return `${path}: Blob type`;
    if (bx.join() !== by.join()) return `${path}: Blob bytes`;
    if (x instanceof File) {
      const f = y as File;
      if (x.name !== f.name || x.lastModified !== f.lastModified) {
        return `${path}: File name/lastModified`;
      }
    }
    return undefined;
  }
  if (ArrayBuffer.isView(x)) {
    const v = y as ArrayBufferView;
    // Only the viewed bytes count (see the module doc of src/_codec.ts).
    const bytes = (w: ArrayBufferView) =>
      new Uint8Array(w.buffer, w.byteOffset, w.byteLength).join();
    if (bytes(x) !== bytes(v)) return `${path}: view bytes`;
    if ((x as Uint8Array).length !== (v as Uint8Array).length) {
      return `${path}: view length`;
    }
    return undefined;
  }
  if (x instanceof ArrayBuffer) {
    const z = y as ArrayBuffer;
    if (new Uint8Array(x).join() !== new Uint8Array(z).join()) {
      return `${path}: ArrayBuffer bytes`;
    }
    if (x.resizable !== z.resizable || x.maxByteLength !== z.maxByteLength) {
      return `${path}: ArrayBuffer resizable`;
    }
    return undefined;
  }
  if (x instanceof Date) {
    return Object.is(x.getTime(), (y as Date).getTime())
      ? undefined
      : `${path}: Date`;
  }
  if (x instanceof RegExp) {
    const r = y as RegExp;
    return x.source === r.source && x.flags === r.flags &&
        x.lastIndex === r.lastIndex
      ? undefined
      : `${path}: RegExp`;
  }
  if (
    x instanceof Boolean || x instanceof Number || x instanceof String ||
    tag === "[object BigInt]"
  ) {
    if (!Object.is(x.valueOf(), y.valueOf())) return `${path}: boxed value`;
  }
  if (x instanceof URL) {
    return x.href === (y as URL).href ? undefined : `${path}: URL`;
  }
  if (x instanceof Error || x instanceof DOMException) {
    const e = y as Error;
    for (const key of ["name", "message", "stack"] as const) {
      if (x[key] !== e[key]) return `${path}.${key}: ${x[key]} vs ${e[key]}`;
    }
    if (Object.hasOwn(x, "cause") !== Object.hasOwn(e, "cause")) {
      return `${path}: has cause`;
    }
    if (Object.hasOwn(x, "message") !== Object.hasOwn(e, "message")) {
      return `${path}: has message`;
    }
    return await differ(x.cause, e.cause, `${path}.cause`, pairs);
  }
  if (x instanceof Map) {
    const m = y as Map<unknown, unknown>;
    if (x.size !== m.size) return `${path}: Map size`;
    const ex = [...x];
    const ey = [...m];
    for (let i = 0; i < ex.length; i++) {
      const d =
        await differ(ex[i]![0], ey[i]![0], `${path}<key ${i}>`, pairs) ??
          await differ(ex[i]![1], ey[i]![1], `${path}<value ${i}>`, pairs);
      if (d) return d;
    }
    return undefined;
  }
  if (x instanceof Set) {
    const ex = [...x];
    const ey = [...(y as Set<unknown>)];
    if (ex.length !== ey.length) return `${path}: Set size`;
    for (let i = 0; i < ex.length; i++) {
      const d = await differ(ex[i], ey[i], `${path}<entry ${i}>`, pairs);
      if (d) return d;
    }
    return undefined;
  }
  if (Array.isArray(x) && x.length !== (y as unknown[]).length) {
    return `${path}: length ${x.length} vs ${(y as unknown[]).length}`;
  }
  const kx = Object.keys(x);
  const ky = Object.keys(y);
  if (kx.join() !== ky.join()) return `${path}: keys [${kx}] vs [${ky}]`;
  for (const key of kx) {
    const d = await differ(
      (x as Record<string, unknown>)[key],
      (y as Record<string, unknown>)[key],
      `${path}.${key}`,
      pairs,
    );
    if (d) return d;
  }
  return undefined;
}
