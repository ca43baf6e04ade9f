/* The counter's service worker: it keeps the last copy of the counter page and its scripts, and
   answers with them only when the network fails, so a tablet that lost the network can open the
   counter again (the meals waiting to send live in localStorage). It caches nothing else: the
   counter's JSON endpoints always go to the network. */
"use strict";
var CACHE = "canteen-counter-v1";
var PAGE = {{ url_for("meals.counter")|tojson }};
var ASSETS = {{ assets|tojson }};

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var isPage = request.mode === "navigate" && url.pathname === PAGE;
  if (!isPage && ASSETS.indexOf(url.pathname) < 0) return;
  event.respondWith(
    fetch(request).then(function (response) {
      var copy = response.ok && !response.redirected ? response.clone() : null;
      event.waitUntil(caches.open(CACHE).then(function (cache) {
        if (copy) return cache.put(request, copy);
        // not the page (a redirect to the login page after logging out): forget the old copy
        if (isPage) return cache.delete(request);
      }));
      return response;
    }).catch(function () {
      return caches.match(request).then(function (cached) { return cached || Response.error(); });
    })
  );
});
