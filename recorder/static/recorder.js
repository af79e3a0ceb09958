// The 工作记录仪录像 console page: uploads a recorder folder in resumable
// chunks and follows import progress. Everything else on the page works
// without JavaScript.
(function () {
  'use strict';
  var CHUNK = 4 * 1024 * 1024;
  var EXTS = /\.(mp4|mov|avi|ts|mkv|json)$/i;
  var box = document.getElementById('rec-upload');
  var csrf = box ? box.dataset.csrf : '';

  function api(method, url, body, raw) {
    var opts = { method: method, headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin' };
    if (body !== undefined) {
      if (raw) {
        opts.body = body;
        opts.headers['Content-Type'] = 'application/octet-stream';
      } else {
        opts.body = JSON.stringify(body);
        opts.headers['Content-Type'] = 'application/json';
      }
    }
    return fetch(url, opts).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) {
          var err = new Error(data.message || ('HTTP ' + resp.status));
          err.status = resp.status;
          throw err;
        }
        return data;
      });
    });
  }

  function sleep(ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); }

  // batchOf names the chosen folder by its files, so choosing the same folder
  // again after a reload resumes the same upload.
  function batchOf(files) {
    var keys = files.map(function (f) { return f.webkitRelativePath + ':' + f.size + ':' + f.lastModified; }).sort().join('|');
    var h1 = 0x811c9dc5, h2 = 0x01000193;
    for (var i = 0; i < keys.length; i++) {
      var c = keys.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
    }
    return 'rec-' + h1.toString(16) + h2.toString(16) + '-' + files.length;
  }

  async function sendFile(batch, f, progress) {
    var u = await api('POST', '/api/recorder/uploads', { batch: batch, path: f.webkitRelativePath || f.name, size: f.size });
    var offset = u.offset;
    progress(offset);
    var failures = 0;
    while (offset < f.size) {
      try {
        var r = await api('PUT', '/api/recorder/uploads/' + u.id + '?offset=' + offset, f.slice(offset, offset + CHUNK), true);
        progress(r.offset - offset);
        offset = r.offset;
        failures = 0;
      } catch (e) {
        if (e.status && e.status !== 409 && e.status < 500) { throw e; }
        if (++failures > 20) { throw e; }
        await sleep(Math.min(1000 * failures, 10000));
        var now = await api('GET', '/api/recorder/uploads/' + u.id); // where the server is
        progress(now.offset - offset);
        offset = now.offset;
      }
    }
    await api('POST', '/api/recorder/uploads/' + u.id + '/finish', {});
  }

  async function upload() {
    var input = document.getElementById('rec-folder');
    var bar = document.getElementById('rec-upload-progress');
    var status = document.getElementById('rec-upload-status');
    var button = document.getElementById('rec-upload-start');
    var files = Array.prototype.filter.call(input.files, function (f) { return EXTS.test(f.name); });
    if (files.length === 0) {
      status.textContent = '所选文件夹中没有记录仪录像文件';
      return;
    }
    // Sidecars first: each clip's metadata is there before the import.
    files.sort(function (a, b) { return (EXTS.exec(b.name)[1].toLowerCase() === 'json') - (EXTS.exec(a.name)[1].toLowerCase() === 'json'); });
    var batch = batchOf(files);
    var total = files.reduce(function (n, f) { return n + f.size; }, 0) || 1;
    var done = 0;
    button.disabled = true;
    bar.hidden = false;
    bar.max = total;
    try {
      for (var i = 0; i < files.length; i++) {
        status.textContent = '正在上传第 ' + (i + 1) + ' / ' + files.length + ' 个文件：' + files[i].name;
        await sendFile(batch, files[i], function (n) {
          done += n;
          bar.value = done;
        });
      }
      status.textContent = '上传完成，正在校验并入库…';
      var imp = await api('POST', '/api/recorder/batches/' + batch + '/import', {});
      status.textContent = '导入完成：新增 ' + imp.files_new + '，重复 ' + imp.files_duplicate + '，被改动 ' + imp.files_changed + '，失败 ' + imp.files_failed;
      setTimeout(function () { window.location.reload(); }, 1500);
    } catch (e) {
      status.textContent = '上传失败：' + e.message + '。再次选择同一文件夹上传将从中断处继续。';
    } finally {
      button.disabled = false;
    }
  }

  if (box) {
    document.getElementById('rec-upload-start').addEventListener('click', function () { upload(); });
  }

  // Follow running imports (a recorder being copied) until they finish.
  var table = document.getElementById('rec-imports');
  if (table && table.dataset.running === 'true') {
    var poll = function () {
      api('GET', '/api/recorder/imports').then(function (data) {
        var running = false;
        (data.imports || []).forEach(function (imp) {
          var row = table.querySelector('tr[data-id="' + imp.id + '"]');
          if (!row) { return; }
          row.querySelector('progress').value = imp.bytes_done;
          row.querySelector('.pct').textContent = imp.percent + '%';
          row.querySelector('.new').textContent = imp.files_new;
          row.querySelector('.dup').textContent = imp.files_duplicate;
          running = running || imp.status === 'running';
        });
        if (running) { setTimeout(poll, 2000); } else { window.location.reload(); }
      }).catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 2000);
  }
})();
