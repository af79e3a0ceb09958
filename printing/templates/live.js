// Refreshes the printer page's live part (#printing-live) every few seconds
// without reloading the page: it fetches the page again and swaps the part in.
// It skips a round while the tab is hidden or the user is working in the part
// (a select open, a button focused), so nothing is lost under their hands.
(function () {
  var live = document.getElementById('printing-live');
  if (!live || !window.fetch || !window.DOMParser) return;
  var seconds = parseInt(live.dataset.refresh, 10) || 5;
  function busy() {
    var a = document.activeElement;
    return a && a !== document.body && live.contains(a) && a.tagName !== 'A';
  }
  function tick() {
    if (document.hidden || busy()) return schedule();
    var url = location.pathname + location.search.replace(/([?&])msg=[^&]*&?/, '$1').replace(/[?&]$/, '');
    fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error('status ' + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById('printing-live');
        if (fresh && !busy()) {
          live.innerHTML = fresh.innerHTML;
          live.dataset.updated = String(Date.now());
        }
      })
      .catch(function () {})
      .then(schedule);
  }
  function schedule() { setTimeout(tick, seconds * 1000); }
  schedule();
})();
