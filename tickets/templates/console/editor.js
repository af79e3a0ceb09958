// The ticket template editor: while staff type, the draft is checked by the
// server (POST /api/tickets/drafts) and the preview image is reloaded from the
// URL it returns; errors (in Chinese, with the line number) show under the
// text. Saving is a plain form post, refused here while the draft has an error.
(function () {
  var root = document.getElementById('ticket-editor');
  if (!root) { return; }
  var kind = root.dataset.kind, csrf = root.dataset.csrf;
  var source = document.getElementById('ticket-source');
  var img = document.getElementById('ticket-image');
  var errBox = document.getElementById('ticket-error');
  var status = document.getElementById('ticket-status');
  var form = document.getElementById('ticket-form');
  var timer = null, seq = 0, lastError = '';

  function paper() {
    var p = document.querySelector('input[name=paper]:checked');
    return p ? parseInt(p.value, 10) : 80;
  }
  function showError(msg) {
    lastError = msg || '';
    errBox.textContent = lastError;
    errBox.hidden = !lastError;
    img.classList.toggle('stale', !!lastError);
  }
  function refresh() {
    var my = ++seq;
    status.textContent = '正在生成预览…';
    fetch('/api/tickets/drafts', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ kind: kind, paper: paper(), source: source.value })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (my !== seq) { return; }
      if (!res.ok) {
        showError(res.body.message || '预览失败');
        status.textContent = '';
        return;
      }
      showError('');
      img.src = res.body.url;
      status.textContent = '';
    }).catch(function () {
      if (my === seq) { status.textContent = '无法连接服务器'; }
    });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }
  source.addEventListener('input', later);
  document.querySelectorAll('input[name=paper]').forEach(function (r) {
    r.addEventListener('change', function () {
      var links = document.querySelectorAll('#ticket-kinds a');
      links.forEach(function (a) { a.href = a.href.replace(/paper=\d+/, 'paper=' + paper()); });
      refresh();
    });
  });
  if (form) {
    form.addEventListener('submit', function (ev) {
      if (lastError) {
        ev.preventDefault();
        errBox.hidden = false;
        errBox.scrollIntoView({ block: 'center' });
      }
    });
  }
})();
