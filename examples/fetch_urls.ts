/**
 * Fetching and parsing many URLs with async tasks. The example starts its own
 * HTTP server on localhost with `--pages` small HTML pages (each answers after
 * a short delay, like a real site), then has the pool fetch every page and
 * pull out its title and links. Each worker keeps several fetches in flight
 * at once: async tasks run concurrently inside a worker.
 *
 * ```sh
 * deno run -A examples/fetch_urls.ts --pages 500 --delay 20 --concurrency 16
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool } from "../mod.ts";

/** The task (runs in a worker): fetch a page, return its title and links. */
async function scrape(
  url: string,
): Promise<{ url: string; status: number; title: string; links: string[] }> {
  const response = await fetch(url);
  const html = await response.text();
  const title = /<title>([^<]*)<\/title>/i.exec(html)?.[1]?.trim() ?? "";
  const links = [...html.matchAll(/<a\s+href="([^"]+)"/gi)].map((m) =>
    new URL(m[1]!, url).href
  );
  return { url, status: response.status, title, links };
}

/** The page the local server sends for `/page/<n>`. */
function page(n: number, pages: number): string {
  const next = (n + 1) % pages;
  const skip = (n * 7 + 3) % pages;
  return `<!doctype html><html><head><title>Page ${n}</title></head><body>
<h1>Page ${n}</h1>
<p>Some text about item ${n}.</p>
<a href="/page/${next}">next</a> <a href="/page/${skip}">elsewhere</a>
</body></html>`;
}

/** Runs the example. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      pages: { type: "string", default: "200" },
      delay: { type: "string", default: "10" },
      workers: { type: "string", default: "2" },
      concurrency: { type: "string", default: "16" },
    },
  });
  const pages = Number(values.pages);
  const delay = Number(values.delay);

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const match = /^\/page\/(\d+)$/.exec(new URL(request.url).pathname);
      const n = Number(match?.[1]);
      if (!match || n >= pages) {
        return new Response("not found", { status: 404 });
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      return new Response(page(n, pages), {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    },
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const urls = Array.from({ length: pages }, (_, n) => `${base}/page/${n}`);
    // Up to `qsize` fetches in flight per worker: while one waits for the
    // network, the worker's event loop runs the others.
    await using pool = await Pool.create({
      workers: Number(values.workers),
      qsize: Number(values.concurrency),
    });
    console.log(
      `Fetching ${pages} pages from a local server on ${pool.totalWorkers} workers ...`,
    );
    const started = performance.now();
    let links = 0;
    let failures = 0;
    const seen = new Set<string>();
    for await (const result of pool.map(scrape, urls)) {
      if (result.status !== 200) failures++;
      if (result.title !== `Page ${result.url.split("/").pop()}`) {
        throw new Error(`wrong title for ${result.url}: ${result.title}`);
      }
      links += result.links.length;
      for (const link of result.links) seen.add(link);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `fetched ${pages} pages in ${seconds.toFixed(2)} s (${
        (pages / seconds).toFixed(0)
      } pages/s, ${failures} failed)`,
    );
    console.log(
      `found ${links} links to ${seen.size} distinct pages; every title checked`,
    );
  } finally {
    await server.shutdown();
  }
}

if (import.meta.main) await main();
