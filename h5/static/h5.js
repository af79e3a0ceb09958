// The patients' mobile pages (package h5): one plain script, no build step.
// Screens are the URL fragment (#/doctor/<id>, #/visit/<id> …); every screen
// is drawn from the cloud's JSON APIs with the patient's cookie session, the
// CSRF token going with every write. An API that answers 404/405 without a
// JSON body is a part of the platform not deployed yet: the screen shows a
// friendly empty state instead.
(function () {
  'use strict';

  var HOSPITAL_KEY = 'ihos_h5_hospital';
  var OPENID_KEY = 'ihos_h5_openid';
  var view = document.getElementById('view');
  var S = {
    hospital: '',
    me: null,        // {account_id, hospital_id, phone, patient_id, name, verified}
    csrf: '',
    members: null,
    deps: null,
    unread: 0,
    feed: null,      // the message center's EventSource
    cleanup: [],     // what the current screen stops when left
    filter: { department: '', title: '', q: '', sort: '' },
  };

  // ---- small helpers ------------------------------------------------------

  // h builds an element: attrs may hold class, text, on<event>, data-*, any
  // attribute; children are nodes, strings, arrays, or null/false (skipped).
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else if (k === 'style') el.style.cssText = v; // CSSOM: the CSP allows no style attributes
        else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  function $(sel, root) { return (root || document).querySelector(sel); }

  function toast(msg, ms) {
    var t = document.getElementById('toast');
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, ms || 2500);
  }
  function overlay(text) {
    var o = document.getElementById('overlay');
    if (text === false) { o.hidden = true; return; }
    document.getElementById('overlay-text').textContent = text;
    o.hidden = false;
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  var SH = 'Asia/Shanghai';
  function fmt(ts, opts) {
    if (!ts) return '';
    var d = new Date(ts);
    if (isNaN(d)) return '';
    return d.toLocaleString('zh-CN', Object.assign({ timeZone: SH, hour12: false }, opts));
  }
  function fmtTime(ts) { return fmt(ts, { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }); }
  function fmtClock(ts) { return fmt(ts, { hour: '2-digit', minute: '2-digit' }); }
  function yuan(fen) { return (Number(fen || 0) / 100).toFixed(2); }
  // shanghaiDate is YYYY-MM-DD in Beijing time, days from today.
  function shanghaiDate(days) {
    var d = new Date(Date.now() + days * 86400000);
    var p = new Intl.DateTimeFormat('en-CA', { timeZone: SH, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(d);
    var get = function (t) { return p.filter(function (x) { return x.type === t; })[0].value; };
    return get('year') + '-' + get('month') + '-' + get('day');
  }
  var WEEK = ['日', '一', '二', '三', '四', '五', '六'];

  function empty(text, sub) {
    var ns = 'http://www.w3.org/2000/svg';
    var icon = document.createElementNS(ns, 'svg');
    icon.setAttribute('viewBox', '0 0 48 48');
    icon.setAttribute('class', 'big');
    icon.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M12 6h18l8 8v28H12zM30 6v8h8M18 24h14M18 31h14');
    icon.appendChild(path);
    return h('div', { class: 'empty' }, icon, h('div', { text: text }), sub ? h('div', { class: 'small', text: sub }) : null);
  }
  function card() { return h.apply(null, ['section', { class: 'card' }].concat([].slice.call(arguments))); }
  function initial(name) { return (name || '医').trim().charAt(0) || '医'; }
  function avatar(name, url, big) {
    var a = h('div', { class: 'avatar' + (big ? ' big' : ''), 'aria-hidden': 'true' });
    if (url) {
      var img = h('img', { src: url, alt: '' });
      img.addEventListener('error', function () { a.textContent = initial(name); });
      a.appendChild(img);
    } else {
      a.textContent = initial(name);
    }
    return a;
  }

  // ---- API ------------------------------------------------------------------

  function apiError(status, data) {
    var msg = data && data.message;
    if (!msg) {
      if (status === 0) msg = '网络连接失败，请检查网络后重试';
      else if (status === 404 || status === 405) msg = '该功能暂未开通';
      else if (status === 401) msg = '请先登录';
      else if (status >= 500) msg = '服务暂时不可用，请稍后再试';
      else msg = '请求失败（' + status + '）';
    }
    var e = new Error(msg);
    e.status = status;
    e.code = data && data.code;
    e.fields = (data && data.fields) || {};
    // A route that is not there answers the router's plain 404/405.
    e.missing = (status === 404 || status === 405) && !(data && data.code && data.code !== 'method_not_allowed');
    return e;
  }

  async function api(method, path, body, opt) {
    opt = opt || {};
    var init = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (typeof FormData !== 'undefined' && body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && S.csrf) init.headers['X-CSRF-Token'] = S.csrf;
    var res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw apiError(0, null);
    }
    var data = null;
    if (res.status !== 204 && (res.headers.get('Content-Type') || '').indexOf('json') >= 0) {
      try { data = await res.json(); } catch (err) { data = null; }
    }
    if (res.ok) return data;
    var e = apiError(res.status, data);
    if (res.status === 401 && !opt.quiet) {
      S.me = null;
      S.csrf = '';
      go('#/login?next=' + encodeURIComponent(location.hash || '#/'), true);
    }
    throw e;
  }

  // tryAPI is api for a screen part that may not be deployed: missing → null.
  async function tryAPI(method, path, body) {
    try {
      return await api(method, path, body);
    } catch (e) {
      if (e.missing) return null;
      throw e;
    }
  }

  function showError(box, e) {
    box.textContent = typeof e === 'string' ? e : e.message;
    box.hidden = false;
  }
  // markField shows text under input's field ("" clears it).
  function markField(input, text) {
    var f = input.closest('.field');
    var old = f.querySelector('.msg');
    if (old) old.remove();
    f.classList.toggle('bad', !!text);
    if (text) f.appendChild(h('div', { class: 'msg', text: text }));
  }
  // fieldErrors marks the form's fields the API named and returns the text
  // for the form's error box.
  function fieldErrors(form, e) {
    form.querySelectorAll('.field').forEach(function (f) {
      f.classList.remove('bad');
      var m = f.querySelector('.msg');
      if (m) m.remove();
    });
    Object.keys(e.fields || {}).forEach(function (k) {
      var input = form.querySelector('[name="' + k + '"]');
      var f = input && input.closest('.field');
      if (!f) return;
      f.classList.add('bad');
      f.appendChild(h('div', { class: 'msg', text: e.fields[k] }));
    });
    return e.message;
  }

  // ---- session ----------------------------------------------------------------

  async function loadMe() {
    try {
      var r = await api('GET', '/api/patient/me', undefined, { quiet: true });
      S.me = r.patient;
      S.csrf = r.csrf_token;
      if (S.me.hospital_id) S.hospital = S.me.hospital_id;
    } catch (e) {
      if (e.status !== 401) throw e;
      S.me = null;
      S.csrf = '';
    }
    return S.me;
  }
  // need returns the patient, or sends them to log in (and to verify their
  // real name when verified is asked) and returns null.
  async function need(verified) {
    if (!S.me) await loadMe();
    if (!S.me) {
      go('#/login?next=' + encodeURIComponent(location.hash || '#/'), true);
      return null;
    }
    if (verified && !S.me.verified) {
      toast('请先完成实名认证');
      go('#/realname?next=' + encodeURIComponent(location.hash || '#/'), true);
      return null;
    }
    return S.me;
  }
  async function members(fresh) {
    if (!S.members || fresh) {
      var r = await api('GET', '/api/patient/members');
      S.members = r.members || [];
    }
    return S.members;
  }

  // ---- message center: unread badge and live notices ------------------------

  function setBadge(n) {
    S.unread = Math.max(0, n | 0);
    var b = document.getElementById('badge');
    b.textContent = S.unread > 99 ? '99+' : String(S.unread);
    b.hidden = S.unread === 0;
  }
  async function refreshUnread() {
    if (!S.me) { setBadge(0); return; }
    try {
      var r = await api('GET', '/api/patient/notices/unread', undefined, { quiet: true });
      setBadge(r ? r.count : 0);
    } catch (e) { /* not deployed or offline: no badge */ }
  }
  function startFeed() {
    if (S.feed || !S.me || !S.me.verified || typeof EventSource === 'undefined') return;
    // The stream replays every message of the patient's visits after the
    // cursor: start from the last one this phone saw.
    var key = 'ihos_h5_feed_' + S.me.account_id;
    var cursor = 0;
    try { cursor = +localStorage.getItem(key) || 0; } catch (e) { cursor = 0; }
    var es = new EventSource('/api/events' + (cursor ? '?last_event_id=' + cursor : ''));
    S.feed = es;
    var onMessage = function (ev) {
      if (ev.lastEventId) { try { localStorage.setItem(key, ev.lastEventId); } catch (e) { /* private mode */ } }
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      // A doctor's new message while the patient is elsewhere.
      if (m.sender_role === 'doctor' && !m.event && Date.now() - new Date(m.created_at) < 60000 &&
          location.hash.indexOf('#/visit/' + m.visit_id) !== 0) {
        toast('医生回复了您的消息');
      }
    };
    ['message', 'opened', 'accepted', 'ended', 'cancelled'].forEach(function (n) { es.addEventListener(n, onMessage); });
    es.addEventListener('notice', function (ev) {
      var n = null;
      try { n = JSON.parse(ev.data); } catch (e) { return; }
      if (!n) return;
      // The event carries the badge; a notice may come again, updated
      // ("新消息" counts up while unread).
      if (typeof n.unread === 'number') setBadge(n.unread); else refreshUnread();
      var list = document.getElementById('notices');
      if (list) {
        var old = list.querySelector('[data-notice="' + CSS.escape(n.id) + '"]');
        if (old) old.remove();
        list.insertBefore(noticeRow(n), list.firstChild);
      } else if (n.title && !n.read && noticeLink(n.link) !== location.hash) {
        toast(n.title);
      }
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (logged out, not deployed): try again later.
        S.feed = null;
        setTimeout(function () { if (S.me) startFeed(); }, 30000);
      }
    };
  }
  function stopFeed() {
    if (S.feed) S.feed.close();
    S.feed = null;
  }

  // ---- router -----------------------------------------------------------------

  // go shows screen hash; replace (redirects: to log in, after logging in)
  // keeps the screen left out of the back button's history.
  function go(hash, replace) {
    if (location.hash === hash) route();
    else if (replace) location.replace(hash);
    else location.hash = hash;
  }
  function params(q) {
    var out = {};
    (q || '').split('&').forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf('=');
      out[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }

  var routes = [
    [/^\/$/, home, '找医生', 'home'],
    [/^\/doctor\/([^/]+)$/, doctorPage, '医生主页'],
    [/^\/book\/([^/]+)\/([^/]+)$/, bookPage, '预约问诊'],
    [/^\/pay\/([^/]+)$/, payPage, '支付'],
    [/^\/visit\/([^/]+)$/, visitPage, '问诊'],
    [/^\/messages$/, messagesPage, '消息', 'messages'],
    [/^\/me$/, mePage, '我的', 'me'],
    [/^\/login$/, loginPage, '登录'],
    [/^\/realname$/, realnamePage, '实名认证'],
    [/^\/members$/, membersPage, '就诊人管理'],
    [/^\/members\/new$/, memberNewPage, '添加就诊人'],
    [/^\/visits$/, visitsPage, '我的问诊'],
    [/^\/orders$/, ordersPage, '我的订单'],
    [/^\/bills$/, billsPage, '诊间支付'],
    [/^\/reports$/, reportsPage, '检查检验报告'],
  ];

  var seq = 0;
  async function route() {
    var hash = location.hash.replace(/^#/, '') || '/';
    var qi = hash.indexOf('?');
    var path = qi < 0 ? hash : hash.slice(0, qi);
    var q = params(qi < 0 ? '' : hash.slice(qi + 1));
    S.cleanup.forEach(function (f) { try { f(); } catch (e) { /* ignore */ } });
    S.cleanup = [];
    overlay(false);
    document.body.classList.remove('chat-mode');
    var r = null, m = null;
    for (var i = 0; i < routes.length; i++) {
      m = routes[i][0].exec(path);
      if (m) { r = routes[i]; break; }
    }
    if (!r) { go('#/'); return; }
    var tab = r[3] || '';
    document.getElementById('title').textContent = r[2];
    document.getElementById('back').hidden = !!tab;
    document.getElementById('tabbar').hidden = !tab;
    document.body.classList.toggle('no-tabs', !tab);
    document.querySelectorAll('.tabbar a').forEach(function (a) { a.classList.toggle('on', a.dataset.tab === tab); });
    var my = ++seq;
    view.replaceChildren(h('div', { class: 'loading', text: '加载中…' }));
    window.scrollTo(0, 0);
    try {
      var content = await r[1].apply(null, m.slice(1).map(decodeURIComponent).concat([q]));
      if (my !== seq || content === undefined || content === null) return;
      view.replaceChildren(content);
    } catch (e) {
      if (my !== seq) return;
      if (e.status === 401) return; // on its way to the login screen
      view.replaceChildren(e.missing ? empty('该功能暂未开通', '敬请期待') :
        h('div', { class: 'empty' }, h('div', { class: 'err', text: e.message }),
          h('p', null, h('button', { class: 'btn ghost small', type: 'button', text: '重试', onclick: route }))));
    }
  }
  function setTitle(t) { document.getElementById('title').textContent = t; }
  function onLeave(f) { S.cleanup.push(f); }

  // ---- 登录 ---------------------------------------------------------------------

  async function loginPage(q) {
    var next = q.next || '#/me';
    if (await loadMe()) { go(S.me.verified ? next : '#/realname?next=' + encodeURIComponent(next), true); return null; }
    var err = h('div', { class: 'formerr', hidden: true });
    var phone = h('input', { type: 'tel', name: 'phone', inputmode: 'numeric', maxlength: '11', autocomplete: 'tel', placeholder: '请输入手机号', id: 'phone' });
    var code = h('input', { type: 'text', name: 'code', inputmode: 'numeric', maxlength: '6', autocomplete: 'one-time-code', placeholder: '6 位验证码', id: 'code' });
    var send = h('button', { type: 'button', class: 'btn ghost', id: 'send-code', text: '获取验证码' });
    var timer = null;
    onLeave(function () { clearInterval(timer); });
    function countdown(n) {
      send.disabled = true;
      send.textContent = n + ' 秒后重发';
      timer = setInterval(function () {
        n--;
        if (n <= 0) { clearInterval(timer); send.disabled = false; send.textContent = '重新获取'; return; }
        send.textContent = n + ' 秒后重发';
      }, 1000);
    }
    send.addEventListener('click', async function () {
      err.hidden = true;
      if (!/^1\d{10}$/.test(phone.value.trim())) { showError(err, '请输入 11 位手机号'); return; }
      send.disabled = true;
      try {
        await api('POST', '/api/patient/sms-code', { phone: phone.value.trim() });
        toast('验证码已发送');
        countdown(60);
        code.focus();
      } catch (e) {
        send.disabled = false;
        showError(err, fieldErrors(form, e));
      }
    });
    var submit = h('button', { type: 'submit', class: 'btn block', id: 'login', text: '登录' });
    var form = h('form', { novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'phone', text: '手机号' }), phone),
      h('div', { class: 'field' }, h('label', { for: 'code', text: '验证码' }), h('div', { class: 'inline' }, code, send)),
      err, submit,
      h('p', { class: 'muted small', text: '未注册的手机号验证后将自动创建账号。登录即表示您同意《用户服务协议》和《隐私政策》。' }));
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      err.hidden = true;
      submit.disabled = true;
      try {
        var sess = await api('POST', '/api/patient/login', { hospital_id: S.hospital, phone: phone.value.trim(), code: code.value.trim() });
        S.me = sess.patient;
        S.csrf = sess.csrf_token;
        S.members = null;
        refreshUnread();
        startFeed();
        toast('登录成功');
        go(S.me.verified ? next : '#/realname?next=' + encodeURIComponent(next), true);
      } catch (e) {
        showError(err, fieldErrors(form, e));
      } finally {
        submit.disabled = false;
      }
    });
    return h('div', null, card(h('h2', { text: '手机号登录' }), form));
  }

  // ---- 实名认证 --------------------------------------------------------------------

  var ID_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  // idProblem checks a resident ID number as GB 11643 says; "" when fine.
  function idProblem(s) {
    s = s.trim().toUpperCase();
    if (!/^\d{17}[\dX]$/.test(s)) return '请输入 18 位居民身份证号码';
    var sum = 0;
    for (var i = 0; i < 17; i++) sum += (s.charCodeAt(i) - 48) * ID_W[i];
    if ('10X98765432'.charAt(sum % 11) !== s.charAt(17)) return '身份证号码校验位不正确（GB 11643），请核对后重新输入';
    var y = +s.slice(6, 10), mo = +s.slice(10, 12), d = +s.slice(12, 14);
    var dt = new Date(Date.UTC(y, mo - 1, d));
    if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d || dt > new Date()) return '身份证号码中的出生日期无效，请核对后重新输入';
    return '';
  }
  function ageOf(id) {
    var s = id.trim();
    if (s.length !== 18) return -1;
    var b = s.slice(6, 14), now = shanghaiDate(0).replace(/-/g, '');
    var age = +now.slice(0, 4) - +b.slice(0, 4);
    if (now.slice(4) < b.slice(4)) age--;
    return age;
  }
  function idField(name, label) {
    var input = h('input', { type: 'text', name: name, id: name, maxlength: '18', autocomplete: 'off', placeholder: '18 位居民身份证号码' });
    var f = h('div', { class: 'field' }, h('label', { for: name, text: label }), input);
    // Checked as it is typed (once complete), not on blur: a message
    // appearing or going as the patient taps 提交 would move the button
    // away from under their finger.
    input.addEventListener('input', function () {
      var v = input.value.trim();
      markField(input, v.length >= 18 ? idProblem(v) : '');
    });
    return { field: f, input: input };
  }

  async function realnamePage(q) {
    var me = await need(false);
    if (!me) return null;
    var next = q.next || '#/me';
    if (me.verified) {
      return card(h('h2', { text: '实名认证' }), h('p', { class: 'ok', text: '✓ 您已完成实名认证：' + (me.name || '') }),
        h('a', { class: 'btn block', href: next, text: '继续' }));
    }
    var err = h('div', { class: 'formerr', hidden: true });
    var name = h('input', { type: 'text', name: 'name', id: 'rn-name', maxlength: '30', autocomplete: 'name', placeholder: '与身份证一致的姓名' });
    var id = idField('id_number', '身份证号');
    var submit = h('button', { type: 'submit', class: 'btn block', id: 'rn-submit', text: '提交认证' });
    var form = h('form', { novalidate: true },
      h('div', { class: 'note', text: '根据互联网诊疗监管要求，就诊前须完成实名认证。信息仅用于核验身份与建立就诊档案。' }),
      h('div', { class: 'field' }, h('label', { for: 'rn-name', text: '姓名' }), name), id.field, err, submit);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      err.hidden = true;
      var p = idProblem(id.input.value);
      if (!name.value.trim()) { showError(err, '请输入姓名'); return; }
      markField(id.input, p);
      if (p) { id.input.focus(); return; }
      submit.disabled = true;
      try {
        await api('POST', '/api/patient/realname', { name: name.value.trim(), id_number: id.input.value.trim().toUpperCase() });
        S.members = null;
        await loadMe();
        startFeed();
        toast('实名认证成功');
        go(next, true);
      } catch (e) {
        showError(err, fieldErrors(form, e));
      } finally {
        submit.disabled = false;
      }
    });
    return card(h('h2', { text: '实名认证' }), form);
  }

  // ---- 就诊人管理 -------------------------------------------------------------------

  function gender(g) { return g === 'M' ? '男' : g === 'F' ? '女' : (g || ''); }
  function linkLabel(m) {
    if (m.his_patient_id && m.link_status === 'linked') return h('span', { class: 'tag free', text: '已关联院内档案' });
    if (m.link_status === 'review') return h('span', { class: 'tag warn', text: '关联审核中，医院核对后生效' });
    if (m.link_status === 'rejected') return h('span', { class: 'tag warn', text: '关联未通过，请到医院窗口核对' });
    return h('span', { class: 'tag grey', text: '未关联院内档案' });
  }
  async function membersPage() {
    if (!(await need(true))) return null;
    var list = await members(true);
    var box = card(h('h2', { text: '就诊人' }));
    list.forEach(function (m) {
      var linkBtn = null;
      if (!(m.his_patient_id && m.link_status === 'linked') && m.link_status !== 'review') {
        linkBtn = h('button', { type: 'button', class: 'btn ghost small', text: '关联院内档案', 'data-member': m.id });
        linkBtn.addEventListener('click', async function () {
          linkBtn.disabled = true;
          try {
            var r = await api('POST', '/api/patient/members/' + encodeURIComponent(m.id) + '/link-his');
            toast(r.link_status === 'linked' ? '已关联医院就诊档案' : '已提交，等待医院核对');
            route();
          } catch (e) {
            toast(e.message, 4000);
            linkBtn.disabled = false;
          }
        });
      }
      box.appendChild(h('div', { class: 'member', 'data-member-row': m.id, style: 'align-items:flex-start' },
        avatar(m.name),
        h('div', { class: 'grow' },
          h('div', { class: 'tags', style: 'margin:0' }, h('b', { text: m.name }), h('span', { class: 'tag', text: m.relation_label || '' }), m.guardian ? h('span', { class: 'tag', text: '由我监护' }) : null),
          h('div', { class: 'muted', text: [gender(m.gender), m.age >= 0 ? m.age + ' 岁' : ''].filter(Boolean).join(' · ') }),
          h('div', { class: 'muted small', text: m.id_number || '' }),
          h('div', { class: 'spread', style: 'margin-top:6px' }, linkLabel(m), linkBtn))));
    });
    return h('div', null, box,
      h('a', { class: 'btn block', href: '#/members/new', id: 'add-member', text: '＋ 添加就诊人' }),
      h('p', { class: 'muted small', text: '关联院内档案后，可查看和缴纳在医院产生的费用（诊间支付）。未满 6 周岁的儿童须由监护人添加。' }));
  }

  async function memberNewPage(q) {
    if (!(await need(true))) return null;
    var err = h('div', { class: 'formerr', hidden: true });
    var name = h('input', { type: 'text', name: 'name', id: 'm-name', maxlength: '30', placeholder: '与身份证一致的姓名' });
    var id = idField('id_number', '身份证号');
    var rel = h('select', { name: 'relation', id: 'm-relation' },
      h('option', { value: '', text: '请选择' }), h('option', { value: 'child', text: '子女' }), h('option', { value: 'parent', text: '父母' }),
      h('option', { value: 'spouse', text: '配偶' }), h('option', { value: 'other', text: '其他' }));
    var guardian = h('input', { type: 'checkbox', name: 'guardian', id: 'm-guardian' });
    var gbox = h('label', { class: 'check', for: 'm-guardian' }, guardian,
      h('span', null, '我是该儿童的监护人', h('br'), h('span', { class: 'muted small', text: '未满 6 周岁的儿童须由其监护人（年满 18 周岁）添加并陪同就诊。' })));
    gbox.hidden = true;
    function showGuardian() {
      var a = ageOf(id.input.value);
      gbox.hidden = !(rel.value === 'child' || (a >= 0 && a < 6 && !idProblem(id.input.value)));
    }
    rel.addEventListener('change', showGuardian);
    id.input.addEventListener('input', showGuardian);
    var submit = h('button', { type: 'submit', class: 'btn block', id: 'm-submit', text: '保存' });
    var form = h('form', { novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'm-name', text: '姓名' }), name), id.field,
      h('div', { class: 'field' }, h('label', { for: 'm-relation', text: '与本人关系' }), rel), gbox, err, submit);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      err.hidden = true;
      var p = idProblem(id.input.value);
      if (!name.value.trim()) { showError(err, '请输入姓名'); return; }
      markField(id.input, p);
      if (p) { id.input.focus(); return; }
      submit.disabled = true;
      try {
        await api('POST', '/api/patient/members', { name: name.value.trim(), id_number: id.input.value.trim().toUpperCase(), relation: rel.value, guardian: guardian.checked });
        S.members = null;
        toast('已添加就诊人');
        go(q.next || '#/members');
      } catch (e) {
        showError(err, fieldErrors(form, e));
      } finally {
        submit.disabled = false;
      }
    });
    return card(h('h2', { text: '添加就诊人' }), form);
  }

  // ---- 首页 / 找医生 -----------------------------------------------------------------

  var TITLES = ['主任医师', '副主任医师', '主治医师', '住院医师'];
  var TYPE_SHORT = { text: '图文', voice: '语音', video: '视频' };

  async function departments() {
    if (!S.deps) {
      var r = await api('GET', '/api/public/departments?hospital=' + encodeURIComponent(S.hospital));
      S.deps = r.items || [];
    }
    return S.deps;
  }

  function doctorCard(d) {
    var fees = (d.fees || []).map(function (f) {
      return h('span', { class: 'tag', text: (TYPE_SHORT[f.visit_type] || f.label) + ' ¥' + f.fee_yuan });
    });
    var slots = (d.next_slots || []).slice(0, 3).map(function (s) {
      return h('span', { class: 'tag free', text: s.label + ' ' + (TYPE_SHORT[s.visit_type] || '') });
    });
    var rating = d.rating > 0 ? h('span', null, h('b', { text: Number(d.rating).toFixed(1) }), ' 分') : null;
    var volume = d.visit_count !== undefined ? d.visit_count : d.consultations;
    return h('a', { class: 'card doc row', href: '#/doctor/' + encodeURIComponent(d.id), 'data-doctor': d.id, style: 'align-items:flex-start' },
      avatar(d.name, d.photo_url || d.photo),
      h('div', { class: 'grow' },
        h('div', null, h('span', { class: 'name', text: d.name }), h('span', { class: 'title', text: d.title + ' · ' + (d.department || '') })),
        d.specialty ? h('div', { class: 'spec', text: '擅长：' + d.specialty }) : null,
        h('div', { class: 'stats' }, rating, h('span', null, '接诊 ', h('b', { text: String(volume || 0) }), ' 次'),
          d.rating_count ? h('span', { text: d.rating_count + ' 条评价' }) : null),
        h('div', { class: 'tags' }, fees),
        h('div', { class: 'tags' }, slots.length ? slots : h('span', { class: 'tag grey', text: '近期暂无可约号源' }))));
  }

  async function home() {
    var deps = [];
    try { deps = await departments(); } catch (e) { if (!e.missing) throw e; }
    if (deps.length && deps[0].institution) setTitle(deps[0].institution);
    var f = S.filter;
    var list = h('div', { id: 'doctors' }, h('div', { class: 'loading', text: '加载中…' }));
    var search = h('input', { type: 'search', id: 'q', placeholder: '搜索医生姓名、擅长疾病', value: f.q, enterkeyhint: 'search' });
    var form = h('form', { class: 'search', role: 'search' }, search, h('button', { class: 'btn small', type: 'submit', text: '搜索' }));
    form.addEventListener('submit', function (ev) { ev.preventDefault(); f.q = search.value.trim(); search.blur(); load(1); });
    function chips(id, items, key) {
      var box = h('div', { class: 'chips', id: id });
      items.forEach(function (it) {
        var b = h('button', { type: 'button', class: 'chip' + (f[key] === it[0] ? ' on' : ''), text: it[1], 'data-value': it[0] });
        b.addEventListener('click', function () {
          f[key] = it[0];
          box.querySelectorAll('.chip').forEach(function (c) { c.classList.toggle('on', c === b); });
          load(1);
        });
        box.appendChild(b);
      });
      return box;
    }
    var depChips = chips('deps', [['', '全部科室']].concat(deps.map(function (d) { return [d.id, d.name]; })), 'department');
    var titleChips = chips('titles', [['', '全部职称']].concat(TITLES.map(function (t) { return [t, t]; })), 'title');
    var sort = h('select', { id: 'sort', 'aria-label': '排序' },
      h('option', { value: '', text: '综合排序' }), h('option', { value: 'volume', text: '按接诊量' }), h('option', { value: 'rating', text: '按评分' }));
    sort.value = f.sort;
    sort.addEventListener('change', function () { f.sort = sort.value; load(1); });
    var total = h('span', { class: 'muted', id: 'total' });
    var my = 0;
    // load shows the first page; 加载更多 appends the next ones.
    async function load(page) {
      var n = ++my;
      page = page || 1;
      var qs = new URLSearchParams({ hospital: S.hospital, page: String(page) });
      if (f.department) qs.set('department', f.department);
      if (f.title) qs.set('title', f.title);
      if (f.q) qs.set('q', f.q);
      if (f.sort) qs.set('sort', f.sort);
      var old = list.querySelector('#more');
      if (page === 1) list.replaceChildren(h('div', { class: 'loading', text: '加载中…' }));
      else if (old) { old.disabled = true; old.textContent = '加载中…'; }
      try {
        var r = await api('GET', '/api/public/doctors?' + qs.toString());
        if (n !== my) return;
        var items = r.items || [];
        total.textContent = '共 ' + (r.total || items.length) + ' 位医生';
        if (page === 1) {
          list.replaceChildren(items.length ? h('div', { id: 'doctor-cards' }, items.map(doctorCard)) :
            empty(f.q || f.title || f.department ? '没有找到符合条件的医生' : '暂无开通互联网诊疗的医生', f.q ? '换个关键词试试' : ''));
        } else {
          if (old) old.remove();
          add(list.querySelector('#doctor-cards'), items.map(doctorCard));
        }
        var shown = list.querySelectorAll('.doc').length;
        if (shown < (r.total || 0) && items.length) {
          var more = h('button', { type: 'button', class: 'btn ghost block', id: 'more', text: '加载更多' });
          more.addEventListener('click', function () { load(page + 1); });
          list.appendChild(more);
        }
      } catch (e) {
        if (n !== my) return;
        if (page === 1) list.replaceChildren(empty(e.missing ? '医生列表暂未开通' : e.message));
        else if (old) { old.disabled = false; old.textContent = '加载更多'; toast(e.message); }
      }
    }
    load(1);
    return h('div', null, form, depChips, titleChips, h('div', { class: 'toolbar' }, total, sort), list);
  }

  // ---- 医生主页 -----------------------------------------------------------------------

  async function doctorPage(id) {
    var d = await api('GET', '/api/public/doctors/' + encodeURIComponent(id));
    setTitle(d.name + ' ' + d.title);
    var fees = d.fees || [];
    var type = fees.length ? fees[0].visit_type : '';
    var days = [];
    for (var i = 0; i < 7; i++) days.push(shanghaiDate(i));
    // The first day with a free slot, from the list's next slots.
    var day = days[0];
    var firstFree = (d.next_slots || [])[0];
    if (firstFree) {
      var fd = fmt(firstFree.start_at, { year: 'numeric', month: '2-digit', day: '2-digit' }).replace(/\//g, '-');
      if (days.indexOf(fd) >= 0) day = fd;
      type = firstFree.visit_type || type;
    }
    var feeBox = h('div', { class: 'fees', id: 'fees' });
    function drawFees() {
      feeBox.replaceChildren();
      fees.forEach(function (f) {
        var b = h('div', { class: 'fee' + (f.visit_type === type ? ' on' : ''), role: 'button', tabindex: '0', 'data-type': f.visit_type },
          h('div', { class: 'l', text: f.label }), h('div', { class: 'p', text: '¥' + f.fee_yuan }), h('div', { class: 'm', text: f.minutes ? f.minutes + ' 分钟/次' : '' }));
        b.addEventListener('click', function () { type = f.visit_type; drawFees(); drawSlots(); });
        feeBox.appendChild(b);
      });
    }
    var dayBox = h('div', { class: 'days', id: 'days' });
    function drawDays() {
      dayBox.replaceChildren();
      days.forEach(function (ds, i) {
        var dt = new Date(ds + 'T12:00:00+08:00');
        var b = h('button', { type: 'button', class: 'day' + (ds === day ? ' on' : ''), 'data-date': ds },
          h('span', { text: i === 0 ? '今天' : i === 1 ? '明天' : '周' + WEEK[dt.getUTCDay()] }),
          h('b', { text: ds.slice(5).replace('-', '/') }));
        b.addEventListener('click', function () { day = ds; drawDays(); loadSlots(); });
        dayBox.appendChild(b);
      });
    }
    var slotBox = h('div', { id: 'slots' });
    var slots = [];
    function drawSlots() {
      var all = slots.filter(function (s) { return !type || s.visit_type === type; });
      // Times already gone are left out: on a phone a day of half-hour
      // sittings would bury the few bookable ones under a wall of 已过期.
      var mine = all.filter(function (s) { return s.status !== 'past'; });
      if (!mine.length) {
        slotBox.replaceChildren(empty(all.length ? '当天的号源时段已过' : slots.length ? '当天没有该问诊方式的号源' : '当天暂无号源', '请选择其他日期'));
        return;
      }
      var grid = h('div', { class: 'slots' });
      mine.forEach(function (s) {
        var ok = s.status === 'available';
        var b = h('button', { type: 'button', class: 'slot', disabled: !ok, 'data-slot': s.id },
          fmtClock(s.start_at) + '-' + fmtClock(s.end_at),
          h('small', { text: ok ? (s.visit_type_label + ' · 余 ' + s.remaining) : (s.status === 'full' ? '已约满' : s.status === 'past' ? '已过期' : (s.message || '未放号')) }));
        if (!ok && s.message) b.title = s.message;
        b.addEventListener('click', function () { go('#/book/' + encodeURIComponent(d.id) + '/' + encodeURIComponent(s.id) + '?date=' + day); });
        grid.appendChild(b);
      });
      slotBox.replaceChildren(grid);
    }
    async function loadSlots() {
      slotBox.replaceChildren(h('div', { class: 'loading', text: '加载中…' }));
      try {
        var r = await api('GET', '/api/public/doctors/' + encodeURIComponent(d.id) + '/slots?date=' + day);
        slots = r.items || [];
        drawSlots();
      } catch (e) {
        slotBox.replaceChildren(empty(e.message));
      }
    }
    drawFees();
    drawDays();
    loadSlots();

    var ratingBox = h('div', { id: 'ratings' }, h('div', { class: 'muted', text: '加载中…' }));
    tryAPI('GET', '/api/public/doctors/' + encodeURIComponent(d.id) + '/ratings?limit=5').then(function (r) {
      if (!r || !r.count) { ratingBox.replaceChildren(h('div', { class: 'muted', text: '暂无评价' })); return; }
      ratingBox.replaceChildren(h('div', { class: 'spread' }, h('span', null, h('span', { class: 'star-show', text: stars(Math.round(r.average)) }), ' ', Number(r.average).toFixed(1), ' 分'),
        h('span', { class: 'muted', text: r.count + ' 条评价' })),
      h('div', { class: 'list' }, (r.items || []).map(function (it) {
        return h('div', { class: 'item', style: 'display:block' },
          h('div', { class: 'spread' }, h('span', { class: 'muted', text: it.patient || '匿名患者' }), h('span', { class: 'star-show small', text: stars(it.score) })),
          (it.tags || []).length ? h('div', { class: 'tags' }, it.tags.map(function (t) { return h('span', { class: 'tag', text: t }); })) : null,
          it.comment ? h('div', { text: it.comment }) : null,
          h('div', { class: 'muted small', text: fmt(it.created_at, { year: 'numeric', month: 'numeric', day: 'numeric' }) }));
      })));
    }).catch(function () { ratingBox.replaceChildren(h('div', { class: 'muted', text: '评价暂时无法加载' })); });

    var volume = d.visit_count !== undefined ? d.visit_count : d.consultations;
    return h('div', null,
      card(h('div', { class: 'row' }, avatar(d.name, d.photo_url || d.photo, true),
        h('div', { class: 'grow' }, h('div', null, h('b', { style: 'font-size:19px', text: d.name }), ' ', h('span', { class: 'muted', text: d.title })),
          h('div', { class: 'muted', text: d.department || '' }),
          h('div', { class: 'stats' }, d.rating > 0 ? h('span', null, '评分 ', h('b', { text: Number(d.rating).toFixed(1) })) : null,
            h('span', null, '接诊 ', h('b', { text: String(volume || 0) }), ' 次')))),
        d.notice ? h('div', { class: 'note', style: 'margin:10px 0 0', text: '公告：' + d.notice }) : null,
        !d.accepting ? h('div', { class: 'formerr', style: 'margin:10px 0 0', text: '该医生暂停接诊' }) : null),
      card(h('h2', { text: '擅长' }), h('div', { class: 'intro', text: d.specialty || '暂无介绍' }),
        d.intro ? [h('h2', { style: 'margin-top:12px', text: '简介' }), h('div', { class: 'intro', text: d.intro })] : null),
      card(h('h2', { text: '问诊方式与费用' }), fees.length ? feeBox : h('div', { class: 'muted', text: '该医生暂未开通问诊服务' })),
      card(h('h2', { text: '选择就诊时间' }), h('p', { class: 'muted small', style: 'margin-top:-6px', text: '互联网医院仅提供复诊服务，请选择与您既往线下就诊相关的医生。' }), dayBox, slotBox),
      card(h('h2', { text: '患者评价' }), ratingBox));
  }
  function stars(n) { n = Math.max(0, Math.min(5, n | 0)); return '★★★★★'.slice(0, n) + '☆☆☆☆☆'.slice(0, 5 - n); }

  // ---- 预约 ------------------------------------------------------------------------

  async function bookPage(doctorID, slotID, q) {
    if (!(await need(true))) return null;
    var d = await api('GET', '/api/public/doctors/' + encodeURIComponent(doctorID));
    var date = '';
    var m = /^(.*):(\d+)$/.exec(slotID);
    if (!m) throw apiError(400, { message: '号源不存在' });
    // The slot's day: the one asked for, else look through the next 14 days.
    var slot = null;
    var dates = q.date ? [q.date] : [];
    for (var j = 0; j < 14; j++) dates.push(shanghaiDate(j));
    for (var i = 0; i < dates.length && !slot; i++) {
      date = dates[i];
      var r = await api('GET', '/api/public/doctors/' + encodeURIComponent(doctorID) + '/slots?date=' + date);
      slot = (r.items || []).filter(function (s) { return s.id === slotID; })[0] || null;
    }
    if (!slot) throw apiError(404, { message: '号源不存在或已过期，请重新选择' });
    var fee = (d.fees || []).filter(function (f) { return f.visit_type === slot.visit_type; })[0];
    var ms = await members(true);
    var chosen = ms.length ? ms[0].patient_id : '';
    var memberBox = h('div', { id: 'members' });
    function drawMembers() {
      memberBox.replaceChildren();
      ms.forEach(function (mm) {
        var radio = h('input', { type: 'radio', name: 'patient_id', value: mm.patient_id, checked: mm.patient_id === chosen });
        var row = h('label', { class: 'member' + (mm.patient_id === chosen ? ' on' : ''), 'data-patient': mm.patient_id }, radio,
          h('div', { class: 'grow' }, h('b', { text: mm.name }), ' ', h('span', { class: 'tag', text: mm.relation_label }),
            h('div', { class: 'muted', text: [gender(mm.gender), mm.age >= 0 ? mm.age + ' 岁' : '', mm.id_number || ''].filter(Boolean).join(' · ') })));
        radio.addEventListener('change', function () { chosen = mm.patient_id; drawMembers(); });
        memberBox.appendChild(row);
      });
      memberBox.appendChild(h('a', { href: '#/members/new?next=' + encodeURIComponent(location.hash), class: 'btn ghost small', text: '＋ 添加就诊人' }));
    }
    drawMembers();
    var err = h('div', { class: 'formerr', hidden: true, id: 'book-error' });
    var cond = h('textarea', { name: 'condition', id: 'condition', maxlength: '2000', placeholder: '请描述您的症状、持续时间、目前用药情况，以及本次希望医生解决的问题（必填）' });
    var past = h('textarea', { name: 'past_history', id: 'past_history', maxlength: '2000', placeholder: '既往疾病、手术、过敏史，以及在本院的线下就诊情况（选填）' });
    var count = h('div', { class: 'hint', text: '0/2000' });
    cond.addEventListener('input', function () { count.textContent = cond.value.length + '/2000'; });
    var agree = h('input', { type: 'checkbox', id: 'agree', checked: true });
    var submit = h('button', { type: 'submit', class: 'btn block', id: 'book-submit', text: '确认预约' + (fee ? '并支付 ¥' + fee.fee_yuan : '') });
    var form = h('form', { novalidate: true },
      card(h('h2', { text: '预约信息' }), h('dl', { class: 'kv' },
        h('dt', { text: '医生' }), h('dd', { text: d.name + ' ' + d.title }),
        h('dt', { text: '科室' }), h('dd', { text: d.department || '' }),
        h('dt', { text: '问诊方式' }), h('dd', { text: slot.visit_type_label }),
        h('dt', { text: '就诊时间' }), h('dd', { text: slot.label }),
        h('dt', { text: '费用' }), h('dd', { class: 'price', text: fee ? '¥' + fee.fee_yuan : '—' }))),
      card(h('h2', { text: '就诊人' }), memberBox),
      card(h('h2', { text: '病情资料' }),
        h('div', { class: 'field' }, h('label', { for: 'condition', text: '病情描述' }), cond, count),
        h('div', { class: 'field' }, h('label', { for: 'past_history', text: '既往史 / 就诊记录' }), past),
        h('p', { class: 'muted small', text: '检查报告、患处照片可在支付后进入候诊室发送给医生。' })),
      h('label', { class: 'check', for: 'agree' }, agree, h('span', { text: '我已知晓互联网医院仅提供常见病、慢性病复诊服务，急危重症请立即前往医院急诊。' })),
      err, submit);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      err.hidden = true;
      if (!chosen) { showError(err, '请选择就诊人'); return; }
      if (!cond.value.trim()) { showError(err, '请填写病情描述'); cond.focus(); return; }
      if (!agree.checked) { showError(err, '请阅读并勾选复诊须知'); return; }
      submit.disabled = true;
      try {
        var b = await api('POST', '/api/booking/bookings', { slot_id: slotID, patient_id: chosen, visit_type: slot.visit_type,
          condition: cond.value.trim(), past_history: past.value.trim() });
        if (b.status === 'booked') {
          toast('预约成功');
          var full = await api('GET', '/api/booking/bookings/' + encodeURIComponent(b.id));
          go(full.visit_id ? '#/visit/' + encodeURIComponent(full.visit_id) : '#/visits');
          return;
        }
        location.replace('#/pay/' + encodeURIComponent(b.id));
      } catch (e) {
        showError(err, fieldErrors(form, e));
        if (e.status === 409) {
          // Taken or not bookable any more: offer the doctor's other times.
          add(err, [' ', h('a', { href: '#/doctor/' + encodeURIComponent(doctorID), text: '选择其他时段 ›' })]);
        }
        submit.disabled = false;
      }
    });
    return form;
  }

  // ---- 支付 --------------------------------------------------------------------------

  // payAndWait pays what start() creates (a PayResult) and polls the payment
  // until it ends; it resolves to the final payment.
  async function payAndWait(start) {
    overlay('正在创建订单…');
    try {
      var res = await start();
      var p = res.payment;
      invokeWeChatPay(res.prepay);
      overlay('支付中…');
      var n = 0;
      while (p.status === 'created' || p.status === 'paying') {
        await sleep(1000);
        n++;
        // Every few seconds ask the channel at once (the patient is back
        // from the payment sheet) rather than wait for the resolver.
        p = await api('GET', '/api/pay/orders/' + encodeURIComponent(p.id) + (n % 5 === 0 ? '?refresh=1' : ''));
        if (n > 900) break;
      }
      return p;
    } finally {
      overlay(false);
    }
  }
  // invokeWeChatPay opens WeChat's payment sheet where the page runs in
  // WeChat with the signed JSAPI parameters; elsewhere the payment is made
  // on the channel (the demo's simulator pays by itself) and polled.
  function invokeWeChatPay(prepay) {
    if (!prepay || !prepay.pay_params) return;
    if (window.WeixinJSBridge && window.WeixinJSBridge.invoke) {
      window.WeixinJSBridge.invoke('getBrandWCPayRequest', prepay.pay_params, function () {});
    } else if (window.wx && window.wx.miniProgram && window.wx.miniProgram.navigateTo) {
      window.wx.miniProgram.navigateTo({ url: '/pages/pay/pay?params=' + encodeURIComponent(JSON.stringify(prepay.pay_params)) });
    }
  }
  function openid() { try { return localStorage.getItem(OPENID_KEY) || ''; } catch (e) { return ''; } }
  var PAY_END = { failed: '支付失败，请重试', cancelled: '支付已取消', closed: '订单已关闭（超过支付时限）', refunded: '订单已退款', partially_refunded: '订单已部分退款' };

  async function payPage(id) {
    if (!(await need(true))) return null;
    var b = await api('GET', '/api/booking/bookings/' + encodeURIComponent(id));
    if (b.status === 'booked' && b.visit_id) { location.replace('#/visit/' + encodeURIComponent(b.visit_id)); return null; }
    var doc = null;
    try { doc = await api('GET', '/api/public/doctors/' + encodeURIComponent(b.staff_id)); } catch (e) { doc = null; }
    var err = h('div', { class: 'formerr', hidden: true, id: 'pay-error' });
    var cd = h('div', { class: 'countdown', id: 'countdown' });
    var payBtn = h('button', { type: 'button', class: 'btn block', id: 'pay', text: '立即支付 ¥' + b.fee_yuan });
    var cancelBtn = h('button', { type: 'button', class: 'btn grey block', id: 'cancel-booking', style: 'margin-top:10px', text: '取消预约' });
    var again = h('a', { class: 'btn ghost block', href: '#/doctor/' + encodeURIComponent(b.staff_id), style: 'margin-top:10px', text: '重新预约', hidden: true });
    var timer = null;
    onLeave(function () { clearInterval(timer); });
    function tick() {
      if (b.status !== 'awaiting_payment') return;
      var left = Math.floor((new Date(b.pay_by) - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(timer);
        cd.textContent = '已超过支付时限（15 分钟），号源已释放，请重新预约';
        payBtn.disabled = true;
        cancelBtn.hidden = true;
        again.hidden = false;
        return;
      }
      cd.textContent = '请在 ' + Math.floor(left / 60) + ' 分 ' + String(left % 60).padStart(2, '0') + ' 秒内完成支付，超时号源将自动释放';
    }
    if (b.status === 'awaiting_payment' && b.pay_by) { tick(); timer = setInterval(tick, 1000); }
    if (b.status === 'cancelled') {
      cd.textContent = '该预约已取消' + (b.cancel_reason ? '：' + b.cancel_reason : '');
      payBtn.disabled = true;
      cancelBtn.hidden = true;
      again.hidden = false;
    }
    payBtn.addEventListener('click', async function () {
      err.hidden = true;
      payBtn.disabled = true;
      try {
        var oid = openid();
        var p = await payAndWait(function () { return api('POST', '/api/booking/bookings/' + encodeURIComponent(b.id) + '/pay', oid ? { openid: oid } : {}); });
        if (p.status !== 'paid') { showError(err, PAY_END[p.status] || ('支付未完成：' + (p.status_label || p.status))); payBtn.disabled = false; return; }
        overlay('支付成功，正在进入候诊室…');
        for (var i = 0; i < 30; i++) {
          b = await api('GET', '/api/booking/bookings/' + encodeURIComponent(b.id));
          if (b.visit_id) break;
          await sleep(1000);
        }
        overlay(false);
        toast('支付成功');
        location.replace(b.visit_id ? '#/visit/' + encodeURIComponent(b.visit_id) : '#/visits');
      } catch (e) {
        overlay(false);
        showError(err, e.message);
        payBtn.disabled = false;
      }
    });
    cancelBtn.addEventListener('click', async function () {
      if (!window.confirm('确定取消该预约吗？')) return;
      try {
        await api('POST', '/api/booking/bookings/' + encodeURIComponent(b.id) + '/cancel', { reason: '患者取消' });
        toast('预约已取消');
        go('#/');
      } catch (e) { showError(err, e.message); }
    });
    return h('div', null,
      card(h('div', { class: 'muted', style: 'text-align:center', text: b.status === 'awaiting_payment' ? '待支付金额' : '订单金额' }), h('div', { class: 'amount', id: 'amount', text: '¥' + b.fee_yuan }), cd),
      card(h('dl', { class: 'kv' },
        h('dt', { text: '医生' }), h('dd', { text: doc ? doc.name + ' ' + doc.title : '' }),
        h('dt', { text: '问诊方式' }), h('dd', { text: b.visit_type_label }),
        h('dt', { text: '就诊时间' }), h('dd', { text: fmtTime(b.start_at) + '-' + fmtClock(b.end_at) }),
        h('dt', { text: '预约状态' }), h('dd', { text: b.status_label }))),
      err, payBtn, cancelBtn, again,
      h('p', { class: 'muted small', text: '支付成功后即进入候诊，医生接诊前可随时发送文字和图片补充病情。' }));
  }

  // ---- 候诊 / 问诊 ----------------------------------------------------------------

  var SYS_TEXT = { opened: '已进入候诊，请耐心等待医生接诊', accepted: '医生已接诊，问诊开始', ended: '问诊已结束', cancelled: '问诊已取消' };

  async function visitPage(id, q) {
    if (!(await need(true))) return null;
    var v = await api('GET', '/api/visits/' + encodeURIComponent(id));
    var doc = null;
    try { doc = await api('GET', '/api/public/doctors/' + encodeURIComponent(v.doctor_id)); } catch (e) { doc = null; }
    var docName = doc ? doc.name : '医生';
    setTitle(docName + (doc ? ' ' + doc.title : '') + ' · ' + v.type_label);
    // The booked time slot (the visit itself knows only when it was booked).
    var slotText = '';
    if (v.booking_id) {
      try {
        var bk = await api('GET', '/api/booking/bookings/' + encodeURIComponent(v.booking_id));
        if (bk.start_at) slotText = fmtTime(bk.start_at) + (bk.end_at ? '-' + fmtClock(bk.end_at) : '');
      } catch (e) { slotText = ''; }
    }

    var status = h('div', { class: 'spread card', style: 'padding:10px 14px', id: 'visit-status' });
    var queue = h('div', { class: 'queue', id: 'queue', hidden: true });
    var conn = h('div', { class: 'conn', id: 'conn', hidden: true });
    var chat = h('div', { class: 'chat', id: 'chat' });
    var panes = {};
    var tabs = h('div', { class: 'vtabs', id: 'vtabs' });
    var current = q.tab || 'chat';
    [['chat', '问诊'], ['emr', '病历'], ['rx', '处方'], ['exam', '检查检验']].forEach(function (t) {
      var b = h('button', { type: 'button', text: t[1], 'data-tab': t[0], class: t[0] === current ? 'on' : '' });
      b.addEventListener('click', function () { show(t[0]); });
      tabs.appendChild(b);
    });
    var rateBox = h('div', { id: 'rate' });
    panes.chat = h('div', null, queue, conn, chat, rateBox);
    panes.emr = h('div', { id: 'emr' });
    panes.rx = h('div', { id: 'rx' });
    panes.exam = h('div', { id: 'exams' });
    var composer = composerFor();
    function show(t) {
      current = t;
      tabs.querySelectorAll('button').forEach(function (b) { b.classList.toggle('on', b.dataset.tab === t); });
      Object.keys(panes).forEach(function (k) { panes[k].hidden = k !== t; });
      composer.box.hidden = t !== 'chat' || !canPost();
      spacer.hidden = composer.box.hidden;
      if (t === 'emr') loadEMR();
      if (t === 'rx') loadRx();
      if (t === 'exam') loadExams();
      if (t === 'chat') window.scrollTo(0, document.body.scrollHeight);
    }
    function canPost() { return v.status === 'waiting' || v.status === 'in_progress'; }
    function drawStatus() {
      var cancel = null;
      if (v.status === 'waiting' && v.booking_id) {
        cancel = h('button', { type: 'button', class: 'btn danger small', style: 'white-space:nowrap;flex:none', text: '取消预约' });
        cancel.addEventListener('click', async function () {
          if (!window.confirm('取消后问诊费将原路退回，确定取消吗？')) return;
          try {
            await api('POST', '/api/booking/bookings/' + encodeURIComponent(v.booking_id) + '/cancel', { reason: '患者取消' });
            toast('已取消，费用将原路退回');
            refreshVisit();
          } catch (e) { toast(e.message, 4000); }
        });
      }
      status.replaceChildren();
      add(status, [h('div', null, h('b', { text: v.status_label }), ' ',
        h('span', { class: 'muted', text: v.type_label }),
        h('div', { class: 'muted small', id: 'visit-slot', text: slotText ? '预约时段 ' + slotText : '预约于 ' + fmtTime(v.booked_at) }),
        (v.type === 'voice' || v.type === 'video') && canPost() ? h('div', { class: 'muted small',
          text: '医生将发起' + (v.type === 'video' ? '视频' : '语音') + '通话，请保持页面打开；也可在此发送文字、图片和语音。' }) : null), cancel]);
      queue.hidden = v.status !== 'waiting';
      if (v.status === 'waiting') drawQueue(v.queue_position || 0);
      composer.box.hidden = current !== 'chat' || !canPost();
      spacer.hidden = composer.box.hidden;
      document.body.classList.toggle('chat-mode', !composer.box.hidden);
      if (v.status === 'ended') drawRating();
    }
    function drawQueue(pos) {
      if (v.status !== 'waiting') { queue.hidden = true; return; }
      queue.replaceChildren();
      add(queue, pos > 1 ? ['您前面还有', h('b', { text: String(pos - 1) }), '位患者，请耐心等待'] :
        pos === 1 ? [h('b', { text: '下一位' }), '就是您，请留意医生消息'] : '候诊中，请耐心等待医生接诊');
      queue.hidden = false;
    }
    async function refreshVisit() {
      try { v = await api('GET', '/api/visits/' + encodeURIComponent(id)); drawStatus(); } catch (e) { /* keep the old one */ }
    }

    // Messages: the history first, then the live stream from the last seq.
    var lastSeq = 0;
    var seen = {};
    function bubble(m) {
      if (seen[m.seq]) return;
      seen[m.seq] = true;
      lastSeq = Math.max(lastSeq, m.seq);
      var el;
      if (m.sender_role === 'system' || m.event) {
        el = h('div', { class: 'sys' }, h('span', { text: SYS_TEXT[m.event] || m.body || '' }));
      } else {
        var mine = m.sender_role === 'patient';
        var content;
        if (m.kind === 'image') {
          var img = h('img', { src: '/api/attachments/' + encodeURIComponent(m.attachment_id), alt: '图片', loading: 'lazy' });
          img.addEventListener('click', function () { viewImage(img.src); });
          content = img;
        } else if (m.kind === 'voice') {
          content = h('audio', { controls: true, preload: 'metadata', src: '/api/attachments/' + encodeURIComponent(m.attachment_id) });
        } else {
          content = m.body;
        }
        el = h('div', { class: 'msg' + (mine ? ' me' : ''), 'data-seq': m.seq, 'data-role': m.sender_role },
          avatar(mine ? '我' : docName), h('div', { class: 'bubble' }, content, h('span', { class: 'time', text: fmtClock(m.created_at) })));
      }
      // Keep seq order even if a late history page arrives.
      var after = null;
      chat.querySelectorAll('[data-seq]').forEach(function (x) { if (!after && +x.dataset.seq > m.seq) after = x; });
      el.dataset.seq = m.seq;
      chat.insertBefore(el, after);
      if (current === 'chat' && !after) window.scrollTo(0, document.body.scrollHeight);
    }
    var msgs = await api('GET', '/api/visits/' + encodeURIComponent(id) + '/messages?limit=500');
    (msgs.messages || []).forEach(bubble);

    var es = null, retry = null, closed = false;
    function connect() {
      if (closed || typeof EventSource === 'undefined') return;
      es = new EventSource('/api/visits/' + encodeURIComponent(id) + '/events?last_event_id=' + lastSeq);
      var onMsg = function (ev) {
        var m;
        try { m = JSON.parse(ev.data); } catch (e) { return; }
        bubble(m);
        if (m.event) {
          refreshVisit();
          if (m.event === 'ended') { loadEMR(); loadRx(); }
        }
        conn.hidden = true;
      };
      ['message', 'opened', 'accepted', 'ended', 'cancelled'].forEach(function (n) { es.addEventListener(n, onMsg); });
      es.addEventListener('queue', function (ev) {
        try { drawQueue(JSON.parse(ev.data).position); } catch (e) { /* ignore */ }
      });
      es.onopen = function () { conn.hidden = true; };
      es.onerror = function () {
        conn.textContent = '连接中断，正在重新连接…';
        conn.hidden = false;
        if (es.readyState === EventSource.CLOSED) {
          // EventSource gave up (an error answer): reconnect ourselves,
          // resuming after the last message seen.
          es = null;
          clearTimeout(retry);
          retry = setTimeout(connect, 3000);
        }
      };
    }
    connect();
    onLeave(function () { closed = true; clearTimeout(retry); if (es) es.close(); });

    // EMR, prescriptions, exam orders.
    async function loadEMR() {
      panes.emr.replaceChildren(h('div', { class: 'loading', text: '加载中…' }));
      var r = null;
      try { r = await api('GET', '/api/visits/' + encodeURIComponent(id) + '/emr'); } catch (e) {
        if (e.status !== 404) { panes.emr.replaceChildren(empty(e.message)); return; }
      }
      if (!r || r.status !== 'signed') { panes.emr.replaceChildren(empty('医生尚未出具电子病历', '问诊结束、医生签名后可在此查看')); return; }
      var dl = h('dl', { class: 'kv' });
      [['主诉', r.chief_complaint], ['现病史', r.present_illness], ['既往史', r.past_history], ['过敏史', r.allergy_history],
        ['体格检查', r.physical_exam], ['诊断', (r.diagnoses || []).map(function (x) { return x.name + (x.code ? '（' + x.code + '）' : ''); }).join('；')],
        ['医嘱', r.advice]].forEach(function (kv) {
        if (kv[1]) { dl.appendChild(h('dt', { text: kv[0] })); dl.appendChild(h('dd', { text: kv[1] })); }
      });
      panes.emr.replaceChildren(card(h('div', { class: 'spread' }, h('h2', { text: '电子病历' }), h('span', { class: 'tag free', text: r.status_label || '已签名' })), dl,
        h('p', { class: 'muted small', text: '医师：' + (r.doctor_name || docName) + '　签名时间：' + fmtTime(r.signed_at) + (r.version > 1 ? '　第 ' + r.version + ' 版' : '') })));
    }
    async function loadRx() {
      panes.rx.replaceChildren(h('div', { class: 'loading', text: '加载中…' }));
      var r;
      try { r = await tryAPI('GET', '/api/prescriptions?visit=' + encodeURIComponent(id)); } catch (e) { panes.rx.replaceChildren(empty(e.message)); return; }
      var items = (r && r.items) || [];
      if (!items.length) { panes.rx.replaceChildren(empty('暂无处方', '医生开具并经药师审核通过后将显示在这里')); return; }
      panes.rx.replaceChildren(h('div', null, items.map(rxCard)));
      // Paid and on its way to the hospital's pharmacy: look again shortly.
      if (items.some(function (p) { return p.status === 'paid'; })) {
        clearTimeout(rxTimer);
        rxTimer = setTimeout(function () { if (current === 'rx') loadRx(); }, 2000);
      }
    }
    var rxTimer = null;
    onLeave(function () { clearTimeout(rxTimer); });
    function rxCard(p) {
      var st = { approved: ['warn', '待支付'], paid: ['', '已支付，正在发送至医院'], sent_to_his: ['ok', '已发送至医院'] }[p.status] || ['', p.status_label];
      var pay = null;
      if (p.status === 'approved') {
        pay = h('button', { type: 'button', class: 'btn block', text: '去支付 ¥' + p.total, 'data-rx': p.id });
        pay.addEventListener('click', async function () {
          pay.disabled = true;
          try {
            var oid = openid();
            var pm = await payAndWait(function () { return api('POST', '/api/prescriptions/' + encodeURIComponent(p.id) + '/pay', oid ? { openid: oid } : {}); });
            if (pm.status === 'paid') toast('支付成功，处方已发送至医院');
            else toast(PAY_END[pm.status] || '支付未完成', 4000);
          } catch (e) {
            toast(e.missing ? '处方支付暂未开通，请到医院窗口缴费' : e.message, 4000);
          }
          loadRx();
        });
      }
      return card(h('div', { class: 'spread' }, h('h2', { text: '处方' + (p.revision > 1 ? '（第 ' + p.revision + ' 版）' : '') }), h('span', { class: st[0] + ' small', text: st[1] })),
        p.diagnosis ? h('div', { class: 'muted', text: '诊断：' + p.diagnosis }) : null,
        h('table', { class: 'items' }, h('tbody', null, (p.items || []).map(function (it) {
          return h('tr', null, h('td', null, h('div', { text: it.name + (it.spec ? ' ' + it.spec : '') }),
            h('div', { class: 'muted small', text: [it.dose ? '每次 ' + it.dose + (it.dose_unit || '') : '', it.frequency, it.route, it.days ? it.days + ' 天' : ''].filter(Boolean).join(' · ') })),
          h('td', { class: 'r', text: '×' + it.quantity + (it.unit || '') }), h('td', { class: 'r', text: '¥' + yuan(it.amount_fen) }));
        }))),
        h('div', { class: 'total' }, '合计 ', h('span', { class: 'price', text: '¥' + p.total })),
        p.note ? h('p', { class: 'muted small', text: '备注：' + p.note }) : null, pay);
    }
    async function loadExams() {
      panes.exam.replaceChildren(h('div', { class: 'loading', text: '加载中…' }));
      var r;
      try { r = await tryAPI('GET', '/api/visits/' + encodeURIComponent(id) + '/exam-orders'); } catch (e) { panes.exam.replaceChildren(empty(e.message)); return; }
      var items = Array.isArray(r) ? r : ((r && r.items) || []);
      if (!items.length) { panes.exam.replaceChildren(empty('暂无检查检验申请')); return; }
      panes.exam.replaceChildren(h('div', null, items.map(function (o) {
        return card(h('div', { class: 'spread' }, h('h2', { text: o.kind_label || (o.kind === 'lab' ? '检验' : '检查') }), h('span', { class: 'tag', text: o.status_label || o.status })),
          h('table', { class: 'items' }, h('tbody', null, (o.items || []).map(function (it) {
            return h('tr', null, h('td', { text: it.name }), h('td', { class: 'r', text: '×' + (it.quantity || 1) }), h('td', { class: 'r', text: '¥' + yuan(it.price * (it.quantity || 1)) }));
          }))),
          h('div', { class: 'total' }, '合计 ', h('span', { class: 'price', text: '¥' + yuan(o.total) })),
          o.note ? h('p', { class: 'muted small', text: o.note }) : null,
          h('p', { class: 'muted small' }, '申请单已发送至医院，请在 ', h('a', { href: '#/bills', text: '我的 → 诊间支付' }), ' 中缴费后按医院通知检查。'));
      })));
    }

    // Rating, once the visit has ended.
    var ratingDrawn = false;
    function drawRating() {
      if (ratingDrawn) return;
      ratingDrawn = true;
      var score = 0;
      // The tags the cloud offers (GET /api/public/rating-tags): it checks
      // them on submit, so the page never offers one it would refuse.
      var TAGS = [];
      var maxTags = 0;
      var picked = {};
      var starBox = h('div', { class: 'stars', id: 'stars', role: 'radiogroup', 'aria-label': '评分' });
      for (var i = 1; i <= 5; i++) {
        (function (n) {
          var b = h('button', { type: 'button', text: '★', 'aria-label': n + ' 星', 'data-score': n });
          b.addEventListener('click', function () {
            score = n;
            starBox.querySelectorAll('button').forEach(function (x) { x.classList.toggle('on', +x.dataset.score <= n); });
          });
          starBox.appendChild(b);
        })(i);
      }
      var tagBox = h('div', { class: 'chips', id: 'rate-tags', style: 'flex-wrap:wrap' });
      tryAPI('GET', '/api/public/rating-tags').then(function (r) {
        TAGS = (r && r.tags) || [];
        maxTags = (r && r.max_tags) || 0;
        tagBox.replaceChildren.apply(tagBox, TAGS.map(function (t) {
          var c = h('button', { type: 'button', class: 'chip', text: t, 'data-tag': t });
          c.addEventListener('click', function () {
            var n = TAGS.filter(function (x) { return picked[x]; }).length;
            if (!picked[t] && maxTags && n >= maxTags) { toast('最多选择 ' + maxTags + ' 个标签'); return; }
            picked[t] = !picked[t];
            c.classList.toggle('on', picked[t]);
          });
          return c;
        }));
      }).catch(function () { /* rating without tags */ });
      var comment = h('textarea', { id: 'comment', maxlength: '500', placeholder: '说说您对本次问诊的感受（选填）' });
      var err = h('div', { class: 'formerr', hidden: true });
      var submit = h('button', { type: 'button', class: 'btn block', id: 'rate-submit', text: '提交评价' });
      var box = card(h('h2', { text: '评价医生' }), starBox, tagBox, h('div', { class: 'field' }, comment), err, submit);
      submit.addEventListener('click', async function () {
        err.hidden = true;
        if (!score) { showError(err, '请选择评分（1-5 星）'); return; }
        submit.disabled = true;
        try {
          await api('POST', '/api/visits/' + encodeURIComponent(id) + '/rating', { score: score, comment: comment.value.trim(),
            tags: TAGS.filter(function (t) { return picked[t]; }) });
          rateBox.replaceChildren(card(h('p', { class: 'ok', style: 'margin:0', text: '感谢您的评价！' })));
        } catch (e) {
          if (e.status === 409) { rateBox.replaceChildren(card(h('p', { class: 'muted', style: 'margin:0', text: e.message || '您已评价过本次问诊' }))); return; }
          showError(err, e.missing ? '评价功能暂未开通' : e.message);
          submit.disabled = false;
        }
      });
      rateBox.replaceChildren(box);
      // Already rated (the visit list knows): say so instead.
      tryAPI('GET', '/api/patient/visits').then(function (list) {
        var items = Array.isArray(list) ? list : ((list && list.items) || []);
        var me = items.filter(function (x) { return x.id === id; })[0];
        if (me && me.rated) rateBox.replaceChildren(card(h('p', { class: 'muted', style: 'margin:0', text: '您已评价过本次问诊，感谢您的反馈。' })));
      }).catch(function () {});
    }

    var spacer = h('div', { class: 'composer-space' });
    var page = h('div', null, status, tabs, panes.chat, panes.emr, panes.rx, panes.exam, spacer, composer.box);
    drawStatus();
    show(current);
    return page;

    // composerFor builds the input bar: text, photos (album or camera) and
    // voice (MediaRecorder, or WAV through Web Audio where it records no
    // format the cloud takes).
    function composerFor() {
      var text = h('textarea', { id: 'msg-text', rows: '1', maxlength: '2000', placeholder: '输入消息…', enterkeyhint: 'send' });
      var send = h('button', { type: 'button', class: 'btn send', id: 'msg-send', text: '发送' });
      var file = h('input', { type: 'file', accept: 'image/*', id: 'msg-image', hidden: true });
      var camera = h('input', { type: 'file', accept: 'image/*', capture: 'environment', id: 'msg-camera', hidden: true });
      var imgBtn = h('button', { type: 'button', class: 'icon', id: 'btn-image', text: '图片', 'aria-label': '发送图片' });
      var camBtn = h('button', { type: 'button', class: 'icon', id: 'btn-camera', text: '拍照', 'aria-label': '拍照' });
      var voiceBtn = h('button', { type: 'button', class: 'icon', id: 'btn-voice', text: '语音', 'aria-label': '录制语音' });
      var canRecord = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
      voiceBtn.hidden = !canRecord;
      imgBtn.addEventListener('click', function () { file.click(); });
      camBtn.addEventListener('click', function () { camera.click(); });
      async function post(body) {
        return api('POST', '/api/visits/' + encodeURIComponent(id) + '/messages', body);
      }
      async function sendText() {
        var t = text.value.trim();
        if (!t) return;
        send.disabled = true;
        try {
          bubble(await post({ kind: 'text', body: t }));
          text.value = '';
        } catch (e) { toast(e.message, 4000); }
        send.disabled = false;
      }
      send.addEventListener('click', sendText);
      text.addEventListener('keydown', function (ev) {
        if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendText(); }
      });
      async function upload(blob, name) {
        var fd = new FormData();
        fd.append('file', blob, name);
        overlay('正在发送…');
        try {
          var att = await api('POST', '/api/visits/' + encodeURIComponent(id) + '/attachments', fd);
          bubble(await post({ kind: att.kind, attachment_id: att.id }));
        } catch (e) {
          toast(e.message, 4000);
        } finally {
          overlay(false);
        }
      }
      [file, camera].forEach(function (inp) {
        inp.addEventListener('change', function () {
          var f = inp.files && inp.files[0];
          inp.value = '';
          if (!f) return;
          shrink(f).then(function (small) {
            if (small.size > 10 * 1024 * 1024) { toast('图片不能超过 10 MB'); return; }
            upload(small, small === f ? (f.name || 'photo.jpg') : 'photo.jpg');
          });
        });
      });
      var rec = null;
      voiceBtn.addEventListener('click', async function () {
        if (rec) { rec.stop(); return; }
        try {
          rec = await startRecording(function (blob, name) {
            rec = null;
            voiceBtn.classList.remove('rec');
            voiceBtn.textContent = '语音';
            if (blob && blob.size > 0) upload(blob, name);
          });
          voiceBtn.classList.add('rec');
          voiceBtn.textContent = '停止';
          toast('正在录音，再点一次发送', 1500);
        } catch (e) {
          rec = null;
          toast('无法录音：请允许使用麦克风', 3000);
        }
      });
      onLeave(function () { if (rec) rec.cancel(); });
      var box = h('div', { class: 'composer', id: 'composer' }, h('div', { class: 'inner' }, imgBtn, camBtn, voiceBtn, text, send), file, camera);
      return { box: box };
    }
  }

  // shrink makes a phone's large photo at most 1600 px on its long side (a
  // JPEG), so it uploads quickly on a mobile network; small ones and
  // anything the browser cannot draw are sent as they are.
  function shrink(file) {
    var MAX = 1600;
    if (file.size < 1.5 * 1024 * 1024 || !/^image\/(jpeg|png|webp)$/.test(file.type)) return Promise.resolve(file);
    return new Promise(function (resolve) {
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () {
        var scale = Math.min(1, MAX / Math.max(img.naturalWidth, img.naturalHeight));
        var c = document.createElement('canvas');
        c.width = Math.round(img.naturalWidth * scale);
        c.height = Math.round(img.naturalHeight * scale);
        c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
        URL.revokeObjectURL(url);
        c.toBlob(function (b) { resolve(b && b.size < file.size ? b : file); }, 'image/jpeg', 0.85);
      };
      img.onerror = function () { URL.revokeObjectURL(url); resolve(file); };
      img.src = url;
    });
  }

  function viewImage(src) {
    var v = h('div', { class: 'viewer', role: 'dialog' }, h('img', { src: src, alt: '图片' }));
    v.addEventListener('click', function () { v.remove(); });
    document.body.appendChild(v);
  }

  // startRecording records the microphone until stop() (at most 60 s) and
  // calls done(blob, filename). The cloud takes MP4/AAC, Ogg, AMR, MP3 and
  // WAV clips: MediaRecorder where it records one of those, else 16 kHz WAV
  // made here from Web Audio samples.
  async function startRecording(done) {
    var stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    var stopTracks = function () { stream.getTracks().forEach(function (t) { t.stop(); }); };
    var limit;
    var types = [['audio/mp4', 'voice.m4a'], ['audio/ogg;codecs=opus', 'voice.ogg'], ['audio/ogg', 'voice.ogg']];
    var pick = null;
    if (typeof MediaRecorder !== 'undefined' && MediaRecorder.isTypeSupported) {
      pick = types.filter(function (t) { return MediaRecorder.isTypeSupported(t[0]); })[0] || null;
    }
    if (pick) {
      var chunks = [];
      var mr = new MediaRecorder(stream, { mimeType: pick[0] });
      var cancelled = false;
      mr.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
      mr.onstop = function () { clearTimeout(limit); stopTracks(); done(cancelled ? null : new Blob(chunks, { type: pick[0].split(';')[0] }), pick[1]); };
      mr.start();
      limit = setTimeout(function () { if (mr.state !== 'inactive') mr.stop(); }, 60000);
      return { stop: function () { if (mr.state !== 'inactive') mr.stop(); }, cancel: function () { cancelled = true; if (mr.state !== 'inactive') mr.stop(); } };
    }
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) { stopTracks(); throw new Error('no audio'); }
    var ctx = new AC();
    var src = ctx.createMediaStreamSource(stream);
    var proc = ctx.createScriptProcessor(4096, 1, 1);
    var bufs = [];
    proc.onaudioprocess = function (e) { bufs.push(new Float32Array(e.inputBuffer.getChannelData(0))); };
    src.connect(proc);
    proc.connect(ctx.destination);
    var finished = false;
    function finish(keep) {
      if (finished) return;
      finished = true;
      clearTimeout(limit);
      proc.disconnect();
      src.disconnect();
      stopTracks();
      var rate = ctx.sampleRate;
      ctx.close();
      done(keep ? wav(bufs, rate, 16000) : null, 'voice.wav');
    }
    limit = setTimeout(function () { finish(true); }, 60000);
    return { stop: function () { finish(true); }, cancel: function () { finish(false); } };
  }
  // wav encodes mono samples as 16-bit PCM WAV, resampled to rate.
  function wav(bufs, from, rate) {
    var total = bufs.reduce(function (n, b) { return n + b.length; }, 0);
    var all = new Float32Array(total);
    var o = 0;
    bufs.forEach(function (b) { all.set(b, o); o += b.length; });
    var n = Math.floor(total * rate / from);
    var dv = new DataView(new ArrayBuffer(44 + n * 2));
    var str = function (off, s) { for (var i = 0; i < s.length; i++) dv.setUint8(off + i, s.charCodeAt(i)); };
    str(0, 'RIFF'); dv.setUint32(4, 36 + n * 2, true); str(8, 'WAVE'); str(12, 'fmt ');
    dv.setUint32(16, 16, true); dv.setUint16(20, 1, true); dv.setUint16(22, 1, true); dv.setUint32(24, rate, true);
    dv.setUint32(28, rate * 2, true); dv.setUint16(32, 2, true); dv.setUint16(34, 16, true); str(36, 'data'); dv.setUint32(40, n * 2, true);
    for (var i = 0; i < n; i++) {
      var s = Math.max(-1, Math.min(1, all[Math.floor(i * from / rate)] || 0));
      dv.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([dv], { type: 'audio/wav' });
  }

  // ---- 消息 -----------------------------------------------------------------------

  // noticeLink turns a notice's link into a screen of these pages.
  function noticeLink(link) {
    if (!link) return '';
    if (link.charAt(0) === '#') return link;
    var i = link.indexOf('#');
    if (link.indexOf('/h5/') === 0 && i >= 0) return link.slice(i);
    var m = /\/visits?\/([^/?#]+)/.exec(link);
    if (m) return '#/visit/' + m[1];
    return '';
  }
  function noticeRow(n) {
    var a = h('a', { class: 'notice' + (n.read ? '' : ' unread'), 'data-notice': n.id, href: noticeLink(n.link) || '#/messages' },
      h('div', { class: 'spread' }, h('span', { class: 't', text: n.title }), h('span', { class: 'muted small', text: fmtTime(n.created_at) })),
      n.body ? h('div', { class: 'muted', text: n.body }) : null);
    a.addEventListener('click', function () {
      if (n.read) return;
      n.read = true;
      a.classList.remove('unread');
      setBadge(S.unread - 1);
      api('POST', '/api/patient/notices/read', { ids: [n.id] }).catch(function () {});
    });
    return a;
  }
  async function messagesPage() {
    if (!(await need(false))) return null;
    var r = await tryAPI('GET', '/api/patient/notices?limit=50');
    if (r === null) return empty('消息中心即将开通', '预约、接诊、医生回复、处方与订单通知将显示在这里');
    var items = Array.isArray(r) ? r : (r.items || []);
    refreshUnread();
    var list = h('div', { id: 'notices' }, items.map(noticeRow));
    var all = h('button', { type: 'button', class: 'btn ghost small', id: 'read-all', text: '全部已读' });
    all.addEventListener('click', async function () {
      try {
        await api('POST', '/api/patient/notices/read', { ids: 'all' });
        list.querySelectorAll('.unread').forEach(function (x) { x.classList.remove('unread'); });
        items.forEach(function (n) { n.read = true; });
        setBadge(0);
      } catch (e) { toast(e.message); }
    });
    return h('div', null, h('div', { class: 'spread', style: 'margin-bottom:8px' }, h('span', { class: 'muted', text: '通知' }), all),
      card(items.length ? list : [list, empty('暂无消息')]));
  }

  // reportsPage lists the notices of HIS results (检查检验报告): where a
  // report notice leads.
  async function reportsPage() {
    if (!(await need(true))) return null;
    var r = await tryAPI('GET', '/api/patient/notices?limit=100');
    var items = r === null ? [] : (Array.isArray(r) ? r : (r.items || [])).filter(function (n) { return n.kind === 'report'; });
    if (!items.length) return empty('暂无检查检验报告', '医院出具报告后会通知您，纸质报告可在医院自助机打印');
    return card(h('div', { id: 'reports' }, items.map(function (n) {
      return h('div', { class: 'notice' }, h('div', { class: 'spread' }, h('span', { class: 't', text: n.title }), h('span', { class: 'muted small', text: fmtTime(n.created_at) })),
        n.body ? h('div', { class: 'intro', text: n.body }) : null);
    })), h('p', { class: 'muted small', text: '报告解读请咨询您的医生；纸质报告可在医院自助机打印。' }));
  }

  // ---- 我的 ----------------------------------------------------------------------

  async function mePage() {
    var me = await loadMe();
    if (!me) {
      return h('div', null, card(h('div', { class: 'row' }, avatar('?'), h('div', { class: 'grow' }, h('b', { text: '未登录' }), h('div', { class: 'muted', text: '登录后可预约问诊、查看订单' })))),
        h('a', { class: 'btn block', href: '#/login?next=%23%2Fme', id: 'go-login', text: '登录 / 注册' }));
    }
    var logout = h('button', { type: 'button', class: 'btn grey block', id: 'logout', text: '退出登录' });
    logout.addEventListener('click', async function () {
      if (!window.confirm('确定退出登录吗？')) return;
      try { await api('POST', '/api/patient/logout'); } catch (e) { /* the session is gone either way */ }
      S.me = null; S.csrf = ''; S.members = null;
      stopFeed();
      setBadge(0);
      go('#/');
    });
    return h('div', null,
      h('section', { class: 'card profile' }, h('div', { class: 'row' }, avatar(me.name || '我'),
        h('div', { class: 'grow' }, h('b', { style: 'font-size:18px', text: me.name || '未实名用户' }), h('div', { class: 'muted', text: me.phone })),
        me.verified ? h('span', { class: 'tag free', text: '已实名' }) : h('a', { class: 'tag warn', href: '#/realname', text: '去实名认证' }))),
      h('section', { class: 'card menu' },
        h('a', { href: '#/visits', id: 'menu-visits' }, '我的问诊', h('span', { class: 'chev', text: '›' })),
        h('a', { href: '#/orders', id: 'menu-orders' }, '我的订单', h('span', { class: 'chev', text: '›' })),
        h('a', { href: '#/bills', id: 'menu-bills' }, '诊间支付', h('span', { class: 'chev', text: '›' })),
        h('a', { href: '#/members', id: 'menu-members' }, '就诊人管理', h('span', { class: 'chev', text: '›' })),
        !me.verified ? h('a', { href: '#/realname' }, '实名认证', h('span', { class: 'chev', text: '›' })) : null),
      logout);
  }

  var VISIT_TAG = { waiting: 'warn', in_progress: '', ended: 'grey', cancelled: 'grey' };
  async function visitsPage() {
    if (!(await need(true))) return null;
    var r = await tryAPI('GET', '/api/patient/visits');
    if (r !== null) {
      var items = Array.isArray(r) ? r : (r.items || []);
      if (!items.length) return h('div', null, empty('暂无问诊记录'), h('a', { class: 'btn block', href: '#/', text: '去找医生' }));
      return card(h('div', { class: 'list', id: 'visit-list' }, items.map(function (x) {
        return h('a', { class: 'item', href: '#/visit/' + encodeURIComponent(x.id), 'data-visit': x.id }, avatar(x.doctor_name),
          h('div', { class: 'grow' }, h('div', null, h('b', { text: x.doctor_name || '' }), ' ', h('span', { class: 'muted', text: x.department_name || '' })),
            h('div', { class: 'muted small', text: (x.type_label || '') + ' · ' + (x.patient_name || '') + ' · ' + fmtTime(x.slot_start || x.created_at) })),
          h('span', { class: 'tag ' + (VISIT_TAG[x.status] || ''), text: x.status === 'waiting' && x.queue_position ? '候诊第 ' + x.queue_position + ' 位' : x.status_label }),
          x.status === 'ended' && !x.rated ? h('span', { class: 'tag warn', text: '待评价' }) : null);
      })));
    }
    // Without the visit list: the bookings of every member.
    var ms = await members();
    var all = [];
    for (var i = 0; i < ms.length; i++) {
      var b = await api('GET', '/api/booking/bookings?patient_id=' + encodeURIComponent(ms[i].patient_id));
      (b.items || []).forEach(function (x) { x.member = ms[i].name; all.push(x); });
    }
    all.sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; });
    if (!all.length) return h('div', null, empty('暂无问诊记录'), h('a', { class: 'btn block', href: '#/', text: '去找医生' }));
    return card(h('div', { class: 'list', id: 'visit-list' }, all.map(function (x) {
      var a = h('a', { class: 'item', href: x.status === 'awaiting_payment' ? '#/pay/' + encodeURIComponent(x.id) : '#/visits', 'data-booking': x.id },
        h('div', { class: 'grow' }, h('b', { text: x.visit_type_label }), ' ', h('span', { class: 'muted', text: x.member }),
          h('div', { class: 'muted small', text: fmtTime(x.start_at) + ' · ¥' + x.fee_yuan })),
        h('span', { class: 'tag', text: x.status_label }));
      if (x.status === 'booked') {
        a.addEventListener('click', async function (ev) {
          ev.preventDefault();
          try {
            var full = await api('GET', '/api/booking/bookings/' + encodeURIComponent(x.id));
            if (full.visit_id) go('#/visit/' + encodeURIComponent(full.visit_id));
          } catch (e) { toast(e.message); }
        });
      }
      return a;
    })));
  }

  async function ordersPage() {
    if (!(await need(true))) return null;
    var r = await tryAPI('GET', '/api/patient/orders');
    if (r === null) return empty('订单查询暂未开通', '您的支付记录将显示在这里');
    var items = Array.isArray(r) ? r : (r.items || []);
    if (!items.length) return empty('暂无订单');
    return card(h('div', { class: 'list', id: 'order-list' }, items.map(function (o) {
      var inv = o.invoice && o.invoice.url ? h('a', { class: 'btn ghost small', href: o.invoice.url, target: '_blank', rel: 'noopener', text: '电子发票' }) : null;
      return h('div', { class: 'item', 'data-order': o.id },
        h('div', { class: 'grow' }, h('div', null, h('b', { text: o.business_label || '订单' })),
          h('div', { class: 'muted small', text: fmtTime(o.paid_at || o.created_at) + (o.invoice && o.invoice.number ? ' · 发票号 ' + o.invoice.number : '') })),
        h('div', { style: 'text-align:right' }, h('div', { class: 'price', text: '¥' + yuan(o.amount) }), h('div', { class: 'muted small', text: o.state_label || '' })), inv);
    })));
  }

  async function billsPage(q) {
    if (!(await need(true))) return null;
    var ms = await members(true);
    var linked = ms.filter(function (m) { return m.his_patient_id && m.link_status === 'linked'; });
    if (!linked.length) {
      return h('div', null, empty('还没有关联院内就诊档案的就诊人', '关联后可查看和缴纳在医院产生的检查、检验、药品等费用'),
        h('a', { class: 'btn block', href: '#/members', text: '去关联院内档案' }));
    }
    var who = q.his || linked[0].his_patient_id;
    var sel = h('select', { id: 'bill-member', 'aria-label': '就诊人' }, linked.map(function (m) {
      return h('option', { value: m.his_patient_id, selected: m.his_patient_id === who, text: m.name + '（' + m.relation_label + '）' });
    }));
    sel.addEventListener('change', function () { go('#/bills?his=' + encodeURIComponent(sel.value)); });
    var bill;
    try {
      bill = await api('GET', '/api/pay/bills?his_patient_id=' + encodeURIComponent(who));
    } catch (e) {
      if (e.missing) return empty('诊间支付暂未开通');
      return h('div', null, h('div', { class: 'toolbar' }, sel), empty(e.message));
    }
    var fees = bill.fees || [];
    var picked = {};
    var err = h('div', { class: 'formerr', hidden: true });
    var sum = h('span', { class: 'price', id: 'bill-total', text: '¥0.00' });
    var payBtn = h('button', { type: 'button', class: 'btn block', id: 'bill-pay', disabled: true, text: '去支付' });
    function total() {
      var t = 0, n = 0;
      fees.forEach(function (f) { if (picked[f.fee_id]) { t += f.amount_fen; n++; } });
      sum.textContent = '¥' + yuan(t);
      payBtn.disabled = n === 0;
      payBtn.textContent = n ? '支付 ' + n + ' 项 ¥' + yuan(t) : '请选择要缴纳的费用';
    }
    var rows = fees.map(function (f) {
      var busy = f.payment_id && (f.payment_status === 'created' || f.payment_status === 'paying');
      var cb = h('input', { type: 'checkbox', 'data-fee': f.fee_id, disabled: busy });
      if (!busy) picked[f.fee_id] = true;
      cb.checked = !busy;
      cb.addEventListener('change', function () { picked[f.fee_id] = cb.checked; total(); });
      return h('label', { class: 'item check', style: 'align-items:center' }, cb,
        h('div', { class: 'grow' }, h('div', { text: f.item_name }), h('div', { class: 'muted small', text: '数量 ' + f.quantity + ' · ' + fmtTime(f.created_at) + (busy ? ' · 支付中' : '') })),
        h('span', { class: 'price', text: '¥' + yuan(f.amount_fen) }));
    });
    total();
    payBtn.addEventListener('click', async function () {
      err.hidden = true;
      var ids = fees.filter(function (f) { return picked[f.fee_id]; }).map(function (f) { return f.fee_id; });
      payBtn.disabled = true;
      try {
        var oid = openid();
        var p = await payAndWait(function () { return api('POST', '/api/pay/bills', { his_patient_id: who, fee_ids: ids, openid: oid }); });
        if (p.status === 'paid') { toast('缴费成功'); route(); return; }
        showError(err, PAY_END[p.status] || '支付未完成');
      } catch (e) { showError(err, e.message); }
      payBtn.disabled = false;
    });
    return h('div', null, h('div', { class: 'toolbar' }, sel),
      fees.length ? card(h('div', { class: 'list', id: 'fees-list' }, rows), h('div', { class: 'total' }, '合计 ', sum)) : empty('暂无待缴费用'),
      err, fees.length ? payBtn : null);
  }

  // ---- start ----------------------------------------------------------------------

  function start() {
    var qs = new URLSearchParams(location.search);
    try {
      if (qs.get('openid')) localStorage.setItem(OPENID_KEY, qs.get('openid'));
      // The hospital asked for, else the one used before (if this cloud
      // still serves it), else the cloud's default.
      var known = (document.body.dataset.hospitals || '').split(',');
      var stored = localStorage.getItem(HOSPITAL_KEY) || '';
      S.hospital = qs.get('hospital') || (known.indexOf(stored) >= 0 ? stored : '') || document.body.dataset.hospital || '';
      if (S.hospital) localStorage.setItem(HOSPITAL_KEY, S.hospital);
    } catch (e) {
      S.hospital = document.body.dataset.hospital || '';
    }
    document.getElementById('back').addEventListener('click', function () {
      if (history.length > 1) history.back(); else go('#/');
    });
    window.addEventListener('hashchange', route);
    loadMe().then(function () {
      refreshUnread();
      startFeed();
    }).catch(function () {}).then(route);
  }
  start();
})();
