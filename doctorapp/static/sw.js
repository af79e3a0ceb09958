// The doctor app's service worker: it keeps the app shell (page, script,
// style, icon, manifest) for offline start, and nothing else. API answers
// carry patient data and are never cached: they always go to the network.
'use strict';
const CACHE = 'ihos-doctor-shell-v1';
const SHELL = ['/doctor/', '/doctor/static/app.js', '/doctor/static/app.css', '/doctor/static/icon.svg', '/doctor/manifest.webmanifest'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  // The shell only (the script and style are asked for with ?v=…).
  if (!SHELL.includes(url.pathname)) return;
  // Network first, so a new version shows at once; the cache when offline.
  e.respondWith(fetch(req).then((resp) => {
    if (resp.ok) {
      const copy = resp.clone();
      caches.open(CACHE).then((c) => c.put(url.pathname, copy));
    }
    return resp;
  }).catch(() => caches.match(url.pathname)));
});
