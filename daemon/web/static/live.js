// Refreshes the overview in place every few seconds: fetch the same page, swap <main>.
// Same-origin only; the page works without it (and then refreshes itself less often).
(function () {
  "use strict";
  var section = document.querySelector("[data-live]");
  if (!section || !window.fetch || !window.DOMParser) { return; }
  var every = Math.max(2, parseInt(section.getAttribute("data-live"), 10) || 10) * 1000;
  function refresh() {
    fetch(window.location.pathname + window.location.search, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) { main.replaceChildren.apply(main, Array.from(fresh.childNodes)); }
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
