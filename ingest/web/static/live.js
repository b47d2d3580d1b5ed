// edgeorder dashboard: live updates over Server-Sent Events, confirmations, async presses.
// Pages work without this script; it only saves reloads. No library, no external asset.
(() => {
  "use strict";
  const body = document.body;

  // Re-read the current page and swap every live region ([data-region] with an id).
  // At most one refresh per second, whatever the notice rate (a big fleet's telemetry).
  const MIN_GAP_MS = 1000;
  let timer = null, running = false, again = false, last = 0;
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    last = Date.now();
    try {
      const resp = await fetch(location.href, { credentials: "same-origin",
        headers: { Accept: "text/html" } });
      if (resp.redirected && new URL(resp.url).pathname === "/login") { location.reload(); return; }
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      document.querySelectorAll("[data-region][id]").forEach((el) => {
        const fresh = doc.getElementById(el.id);
        if (!fresh) return;
        // What the operator ticked (devices for a bulk action) survives the swap.
        const kept = new Set(Array.from(el.querySelectorAll("input[data-keep]:checked"),
          (box) => box.value));
        const node = document.importNode(fresh, true);
        node.querySelectorAll("input[data-keep]").forEach((box) => {
          box.checked = kept.has(box.value);
        });
        el.replaceWith(node);
      });
      relativeTimes();
      body.dataset.refreshed = String(Date.now());
    } catch (err) {
      console.warn("live refresh failed", err);
    } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  }
  function schedule() {
    if (timer !== null) return;
    const wait = Math.max(150, MIN_GAP_MS - (Date.now() - last));
    timer = setTimeout(() => { timer = null; refresh(); }, wait);
  }

  // "12 s ago" next to every <time datetime>, kept current.
  function relativeTimes() {
    const now = Date.now();
    document.querySelectorAll("time[datetime]").forEach((el) => {
      const t = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(t)) return;
      const s = Math.max(0, Math.round((now - t) / 1000));
      const text = s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago`
        : s < 86400 ? `${Math.round(s / 3600)} h ago` : el.getAttribute("datetime").slice(0, 10);
      el.title = el.getAttribute("datetime");
      el.textContent = text;
    });
  }

  // Forms that ask for confirmation, and forms posted in the background (press buttons).
  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { ev.preventDefault(); return; }
    if (!("async" in form.dataset)) return;
    ev.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const resp = await fetch(form.action, { method: "POST", body: new FormData(form),
        credentials: "same-origin", headers: { Accept: "application/json",
          "X-CSRF-Token": body.dataset.csrf || "" } });
      if (!resp.ok) alert(`Refused (${resp.status}): ${await resp.text()}`);
    } finally {
      if (button) button.disabled = false;
      schedule();
    }
  });

  // "All shown": tick (or untick) every device row of the filtered fleet table.
  document.getElementById("select-all")?.addEventListener("change", (ev) => {
    document.querySelectorAll("#fleet input[data-keep]").forEach((box) => {
      box.checked = ev.target.checked;
    });
  });

  relativeTimes();
  setInterval(relativeTimes, 5000);

  if (!body.dataset.live || !window.EventSource) return;
  const state = document.createElement("span");
  state.className = "live-state";
  state.id = "live-state";
  state.textContent = "connecting…";
  document.querySelector("header")?.appendChild(state);
  const source = new EventSource("/live");
  source.addEventListener("hello", () => {
    state.textContent = "live";
    body.dataset.liveConnected = "1";
    // Catch up on what changed between rendering the page (or losing the stream) and
    // this subscription: a notice sent in that gap reached nobody.
    schedule();
  });
  // A device page only cares about its own device (and the buffer, and resyncs).
  const only = body.dataset.device;
  source.addEventListener("notice", (ev) => {
    if (only) {
      let n = {};
      try { n = JSON.parse(ev.data); } catch (err) { /* refresh anyway */ }
      if (n.device_id && n.device_id !== only) return;
    }
    schedule();
  });
  source.onerror = () => { state.textContent = "reconnecting…"; body.dataset.liveConnected = "0"; };
})();
