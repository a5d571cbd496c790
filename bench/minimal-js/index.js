// The minimal JavaScript Worker, a baseline of bench/overhead.mjs: the same bare route as
// Gatehouse's /healthz, and (with ORIGIN_URL set) a bare proxy that forwards every other
// request to the origin as is.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/healthz') {
      return new Response('{"status":"ok"}', { headers: { 'content-type': 'application/json' } });
    }
    if (env.ORIGIN_URL) {
      const target = new URL(url.pathname + url.search, env.ORIGIN_URL);
      return fetch(new Request(target, request), { redirect: 'manual' });
    }
    return new Response(null, { status: 404 });
  },
};
