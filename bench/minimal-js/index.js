// The minimal JavaScript Worker, a baseline of bench/overhead.mjs: the same bare route as
// Gatehouse's /healthz, and (with ORIGIN_URL set) a bare proxy that forwards every other
// request to the origin as is (with HEADER_EDITS set, after Gatehouse's header edits).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/healthz') {
      return new Response('{"status":"ok"}', { headers: { 'content-type': 'application/json' } });
    }
    if (env.ORIGIN_URL) {
      const target = new URL(url.pathname + url.search, env.ORIGIN_URL);
      const out = new Request(target, request);
      if (env.HEADER_EDITS) {
        // The header edits Gatehouse makes on the benchmark's request (its access cookie
        // removed with Host, five identity headers added, the token among them): what any
        // proxy doing that job pays the runtime, to tell it from Gatehouse's own work.
        const token = (request.headers.get('cookie') ?? '').replace(/^gh_access=/, '');
        out.headers.delete('host');
        out.headers.delete('cookie');
        out.headers.append('x-gatehouse-user', 'usr_0123456789abcdefghijkl');
        out.headers.append('x-gatehouse-email', 'bench@example.test');
        out.headers.append('x-gatehouse-email-verified', 'true');
        out.headers.append('x-gatehouse-roles', '');
        out.headers.append('x-gatehouse-jwt', token);
      }
      return fetch(out, { redirect: 'manual' });
    }
    return new Response(null, { status: 404 });
  },
};
