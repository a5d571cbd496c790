// The Worker's JavaScript entry: what the runtime calls. scripts/build bundles it with the
// wasm-bindgen output in place of worker-build's own shim (scripts/esbuild-entry). It keeps
// that shim's recovery — after a wasm trap the instance is rebuilt before the next call — but
// exports a plain object with `fetch` and `scheduled`, as a JavaScript Worker does, where the
// shim exports a `WorkerEntrypoint` class behind a Proxy: a class instance, a Proxy and a
// method Proxy per request, which a proxied request of every app would pay (README
// "Performance"). Gatehouse has no RPC methods, which only a class could offer.
import * as wasm from './index.js';

// Shared with the `worker` crate, which flags a trap it sees.
const initState = wasm.__worker_init_state();

function rebuildAfterTrap() {
  if (initState.criticalError) {
    console.log('gatehouse: reinitializing the wasm instance after a trap');
    wasm.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

function noteTrap(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    console.error('gatehouse: wasm trap', e);
    initState.criticalError = true;
  }
}

// A trap while a waiting request is polled again surfaces here (a microtask's exception).
addEventListener('error', (e) => noteTrap(e.error));

export default {
  // A Response, or a promise of one (see `_worker_fetch` in src/worker_glue/mod.rs); its
  // rejections are the fetch entry's own errors, never a trap.
  fetch(request, env, ctx) {
    rebuildAfterTrap();
    try {
      return wasm.fetch(request, env, ctx);
    } catch (e) {
      noteTrap(e);
      throw e;
    }
  },
  async scheduled(controller, env, ctx) {
    rebuildAfterTrap();
    try {
      return await wasm.scheduled(controller, env, ctx);
    } catch (e) {
      noteTrap(e);
      throw e;
    }
  },
};
