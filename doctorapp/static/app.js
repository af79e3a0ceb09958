// 互联网医院 · 医生工作站: the doctor's and pharmacist's app. Plain JavaScript
// over the cloud's JSON APIs with the staff session cookie; every write carries
// the session's CSRF token (X-CSRF-Token). Routes are #hashes. Nothing with
// patient data is stored on the device (no localStorage, no cached answers).
'use strict';
(function () {
  const $ = (s, r) => (r || document).querySelector(s);
  const $$ = (s, r) => Array.from((r || document).querySelectorAll(s));
  const view = $('#view');

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  const tz = { timeZone: 'Asia/Shanghai', hour12: false };
  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return '';
    return d.toLocaleString('zh-CN', Object.assign({ month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }, tz));
  }
  function fmtClock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString('zh-CN', Object.assign({ hour: '2-digit', minute: '2-digit' }, tz));
  }
  function shanghaiDate(offsetDays) {
    const d = new Date(Date.now() + (offsetDays || 0) * 86400000);
    return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  }
  function yuan(fen) { return (Number(fen || 0) / 100).toFixed(2); }
  // money shows an amount the API gives in fen (a number) or yuan (a string).
  function money(v) { return typeof v === 'string' ? v : yuan(v); }

  const state = { me: null, csrf: '', feed: null, unread: 0, live: false, cleanup: [], worklist: {} };

  // ---------- API ----------
  class ApiError extends Error {
    constructor(status, body, missing) {
      super((body && body.message) || '请求失败（' + status + '）');
      this.status = status;
      this.code = body && body.code;
      this.fields = (body && body.fields) || {};
      this.missing = !!missing;
    }
    get full() {
      const extra = Object.values(this.fields).filter((f) => f && f !== this.message);
      return extra.length ? this.message + '：' + extra.join('；') : this.message;
    }
  }

  async function api(method, path, body, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, { message: '网络连接失败，请检查网络后重试' });
    }
    const isJSON = (resp.headers.get('Content-Type') || '').includes('json');
    let data = null;
    if (isJSON && resp.status !== 204) {
      try { data = await resp.json(); } catch (e) { data = null; }
    }
    if (!resp.ok) {
      // A route the cloud does not have yet answers a plain 404/405.
      if ((resp.status === 404 || resp.status === 405) && !isJSON) throw new ApiError(resp.status, { message: '该功能暂未开通' }, true);
      if (resp.status === 401 && !opts.noRedirect) {
        state.me = null;
        markSession(false);
        stopFeed();
        location.hash = '#/login';
      }
      const err = new ApiError(resp.status, data);
      if (err.message === '请先完成今日实名认证' && state.me) {
        state.me.realname_today = false;
        showBanners();
      }
      throw err;
    }
    return data;
  }
  const get = (p, o) => api('GET', p, undefined, o);
  const post = (p, b, o) => api('POST', p, b === undefined ? {} : b, o);
  const put = (p, b) => api('PUT', p, b);

  // ---------- UI helpers ----------
  let toastTimer;
  function toast(msg, kind) {
    const t = $('#toast');
    t.className = 'toast ' + (kind || '');
    t.innerHTML = '';
    t.append(document.createTextNode(msg));
    if (msg === '请先完成今日实名认证') {
      const a = document.createElement('a');
      a.href = '#/realname';
      a.textContent = ' 去认证';
      t.append(a);
    }
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, kind === 'error' ? 7000 : 3500);
  }
  function fail(e) { toast(e.full || e.message || String(e), 'error'); }
  function empty(msg, sub) { return '<div class="empty"><div class="empty-icon">○</div><p>' + esc(msg) + '</p>' + (sub ? '<p class="muted">' + esc(sub) + '</p>' : '') + '</div>'; }
  function missingBox(what) { return empty(what + '暂未开通', '医院上线该功能后即可使用'); }

  // dialog opens a modal with html; onSubmit(form) may return false (keep
  // open) or throw (the message shows in the dialog). Resolves with the
  // value onSubmit returned, or null when cancelled.
  function dialog(html, onSubmit) {
    return new Promise((resolve) => {
      const m = $('#modal');
      const d = $('#dialog');
      d.innerHTML = '<form class="dialog-form">' + html +
        '<p class="form-error" hidden></p><div class="actions"><button type="button" class="btn ghost" data-cancel>取消</button><button type="submit" class="btn primary">确定</button></div></form>';
      m.hidden = false;
      const form = $('form', d);
      const errBox = $('.form-error', d);
      const close = (v) => { m.hidden = true; d.innerHTML = ''; resolve(v); };
      $('[data-cancel]', d).onclick = () => close(null);
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        errBox.hidden = true;
        const btn = $('button[type=submit]', form);
        btn.disabled = true;
        try {
          const v = await onSubmit(form);
          if (v !== false) close(v === undefined ? true : v);
        } catch (e) {
          errBox.textContent = e.full || e.message;
          errBox.hidden = false;
        } finally { btn.disabled = false; }
      };
      const first = $('input, textarea, select', form);
      if (first) first.focus();
    });
  }

  // pinThen asks the doctor's e-signature PIN and runs fn(pin); a refusal
  // (wrong PIN, signing service unavailable) shows in the dialog.
  function pinThen(title, fn) {
    return dialog('<h3>' + esc(title) + '</h3><p class="muted">请输入您的电子签名密码（PIN），签名后即具有法律效力。</p>' +
      '<label>签名密码<input type="password" name="pin" id="pin" inputmode="numeric" autocomplete="off" required maxlength="32"></label>',
    (f) => fn(f.pin.value));
  }

  function setLive(on) {
    state.live = on;
    const l = $('#live');
    l.className = 'live' + (on ? ' on' : '');
    l.title = on ? '实时连接正常' : '实时连接中断，正在重连';
  }

  // ---------- session ----------
  function isDoctor() { return state.me && state.me.kind === 'doctor'; }
  function isPharmacist() { return state.me && state.me.kind === 'pharmacist'; }

  // A marker (no personal data) that this browser logged in: without it the
  // app shows the login at once instead of asking for a session it has not.
  const marker = 'ihos_doctor_session';
  function markSession(on) {
    try { if (on) localStorage.setItem(marker, '1'); else localStorage.removeItem(marker); } catch (e) { /* private mode */ }
  }
  function maybeSession() {
    try { return localStorage.getItem(marker) === '1'; } catch (e) { return true; }
  }

  async function loadMe() {
    if (!maybeSession()) { state.me = null; return; }
    try {
      const r = await get('/api/staff/me', { noRedirect: true });
      state.me = r.staff;
      state.csrf = r.csrf_token;
    } catch (e) {
      state.me = null;
      if (e.status !== 401) throw e;
      markSession(false);
    }
  }

  function showBanners() {
    const me = state.me;
    $('#realname-banner').hidden = !(me && !me.must_change && me.kind === 'doctor' && !me.realname_today && location.hash !== '#/realname');
  }

  function renderChrome() {
    const me = state.me;
    const top = $('#topbar');
    if (!me || me.must_change) { top.hidden = true; showBanners(); return; }
    top.hidden = false;
    $('#live').hidden = !isDoctor(); // pharmacists have no live stream
    $('#brand-sub').textContent = isPharmacist() ? '药师审方' : '医生工作站';
    $('#who-name').textContent = me.name + ' · ' + (me.kind_label || (isDoctor() ? '医师' : '药师'));
    const items = isDoctor()
      ? [['#/home', '工作台'], ['#/schedule', '我的排班'], ['#/patients', '患者管理'], ['#/notices', '消息']]
      : [['#/home', '审方'], ['#/reviewed', '审方记录']];
    const cur = location.hash.split('/').slice(0, 2).join('/');
    $('#nav').innerHTML = items.map(([h, t]) => '<a href="' + h + '"' + (cur === h || (h === '#/home' && cur.startsWith('#/visit')) ? ' class="active"' : '') + '>' + esc(t) +
      (h === '#/notices' && state.unread ? '<span class="badge">' + state.unread + '</span>' : '') + '</a>').join('');
    showBanners();
  }

  $('#logout').onclick = async () => {
    try { await post('/api/staff/logout'); } catch (e) { /* the session may be gone already */ }
    state.me = null;
    state.csrf = '';
    markSession(false);
    stopFeed();
    location.hash = '#/login';
  };

  // ---------- live feed (doctor's message center stream) ----------
  let feedRetry = 1000;
  let feedLast = '';
  let feedTimer;
  const feedListeners = new Set();
  // loadUnread sets the message badge from the message center.
  async function loadUnread() {
    try {
      const r = await get('/api/doctor/notices/unread');
      state.unread = (r && r.count) || 0;
      renderChrome();
    } catch (e) { /* no message center yet: no badge */ }
  }
  function startFeed() {
    if (state.feed || !isDoctor()) return;
    if (!feedLast) loadUnread();
    const es = new EventSource('/api/events' + (feedLast ? '?last_event_id=' + encodeURIComponent(feedLast) : ''));
    state.feed = es;
    es.onopen = () => { feedRetry = 1000; setLive(true); };
    es.onerror = () => {
      setLive(false);
      if (es.readyState === EventSource.CLOSED) {
        state.feed = null;
        clearTimeout(feedTimer);
        feedTimer = setTimeout(startFeed, feedRetry);
        feedRetry = Math.min(feedRetry * 2, 30000);
      }
    };
    const on = (name) => es.addEventListener(name, (ev) => {
      if (ev.lastEventId) feedLast = ev.lastEventId;
      let data = null;
      try { data = JSON.parse(ev.data); } catch (e) { /* ignore */ }
      if (name === 'notice') {
        // The event carries the badge count after it.
        state.unread = data && typeof data.unread === 'number' ? data.unread : state.unread + 1;
        renderChrome();
        // No toast for the visit the doctor is looking at.
        const here = data && data.link && location.hash.indexOf('#/visit/') === 0 && String(data.link).indexOf(location.hash.split('/')[2]) >= 0;
        if (data && data.title && !here) toast('新消息：' + data.title);
      }
      feedListeners.forEach((fn) => fn(name, data));
    });
    ['message', 'worklist', 'opened', 'accepted', 'ended', 'cancelled', 'notice'].forEach(on);
  }
  function stopFeed() {
    clearTimeout(feedTimer);
    if (state.feed) state.feed.close();
    state.feed = null;
    setLive(false);
  }
  function onFeed(fn) {
    feedListeners.add(fn);
    state.cleanup.push(() => feedListeners.delete(fn));
  }
  function debounce(fn, ms) {
    let t;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  // ---------- router ----------
  const routes = [
    [/^#\/login$/, viewLogin, 'public'],
    [/^#\/password$/, viewPassword, 'any'],
    [/^#\/realname$/, viewRealname, 'doctor'],
    [/^#\/home$/, viewHome, ''],
    [/^#\/schedule$/, viewSchedule, 'doctor'],
    [/^#\/visit\/([^/]+)(?:\/(\w+))?$/, viewVisit, 'doctor'],
    [/^#\/patients$/, viewPatients, 'doctor'],
    [/^#\/patient\/([^/]+)$/, viewPatient, 'doctor'],
    [/^#\/notices$/, viewNotices, 'doctor'],
    [/^#\/review\/([^/]+)$/, viewReview, 'pharmacist'],
    [/^#\/reviewed$/, viewReviewed, 'pharmacist'],
  ];
  let rendering = 0;
  async function render() {
    const seq = ++rendering;
    state.cleanup.splice(0).forEach((fn) => { try { fn(); } catch (e) { /* ignore */ } });
    const hash = location.hash || '#/home';
    let match = null;
    for (const [re, fn, need] of routes) {
      const m = hash.match(re);
      if (m) { match = [fn, m.slice(1), need]; break; }
    }
    if (!match) { location.hash = '#/home'; return; }
    const [fn, args, need] = match;
    if (need !== 'public') {
      if (!state.me) { location.hash = '#/login'; return; }
      if (state.me.must_change && need !== 'any') { location.hash = '#/password'; return; }
      if (need === 'doctor' && !isDoctor()) { location.hash = '#/home'; return; }
      if (need === 'pharmacist' && !isPharmacist()) { location.hash = '#/home'; return; }
    }
    renderChrome();
    view.className = 'view';
    try {
      await fn.apply(null, args.concat([() => seq === rendering]));
    } catch (e) {
      if (seq === rendering) view.innerHTML = '<div class="card error-box">' + esc(e.full || e.message) + '</div>';
    }
    window.scrollTo(0, 0);
  }
  window.addEventListener('hashchange', render);

  function afterLogin() {
    const me = state.me;
    if (me.must_change) { location.hash = '#/password'; return; }
    startFeed();
    location.hash = me.kind === 'doctor' && !me.realname_today ? '#/realname' : '#/home';
  }

  // ---------- 登录 ----------
  async function viewLogin() {
    view.className = 'view narrow';
    view.innerHTML = '<div class="login card">' +
      '<div class="login-logo"><img src="/doctor/static/icon.svg" alt=""></div>' +
      '<h1>医生工作站</h1><p class="muted">互联网医院 · 医师、药师登录</p>' +
      '<form id="login-form">' +
      '<label>手机号<input name="phone" id="phone" type="tel" inputmode="numeric" autocomplete="username" required maxlength="14" placeholder="请输入登记的手机号"></label>' +
      '<label>密码<input name="password" id="password" type="password" autocomplete="current-password" required placeholder="请输入密码"></label>' +
      '<p class="form-error" id="login-error" hidden></p>' +
      '<button class="btn primary block" type="submit" id="login-submit">登录</button></form>' +
      '<p class="muted small">仅限医院授权并在岗的医师、药师使用。首次登录请使用医院发放的初始密码，登录后须修改密码。</p></div>';
    $('#login-form').onsubmit = async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const box = $('#login-error');
      box.hidden = true;
      $('#login-submit').disabled = true;
      try {
        const s = await post('/api/staff/login', { phone: f.phone.value.trim(), password: f.password.value }, { noRedirect: true });
        state.me = s.staff;
        state.csrf = s.csrf_token;
        markSession(true);
        afterLogin();
      } catch (e) {
        box.className = 'form-error' + (e.status === 429 ? ' locked' : '');
        box.textContent = e.status === 429 ? e.message + '。如忘记密码，请联系医院重置。' : e.full;
        box.hidden = false;
      } finally { $('#login-submit').disabled = false; }
    };
  }

  // ---------- 首次登录修改密码 ----------
  async function viewPassword() {
    view.className = 'view narrow';
    const first = state.me.must_change;
    view.innerHTML = '<div class="card"><h2>' + (first ? '首次登录，请修改密码' : '修改密码') + '</h2>' +
      (first ? '<p class="muted">为保障账号安全，医院发放的初始密码须修改为您自己的密码后才能使用。</p>' : '') +
      '<form id="pw-form">' +
      '<label>原密码（初始密码）<input type="password" name="old" id="old-password" autocomplete="current-password" required></label>' +
      '<label>新密码<input type="password" name="new1" id="new-password" autocomplete="new-password" required placeholder="至少 10 位，须同时包含字母和数字"></label>' +
      '<label>再次输入新密码<input type="password" name="new2" id="new-password2" autocomplete="new-password" required></label>' +
      '<p class="form-error" id="pw-error" hidden></p>' +
      '<button class="btn primary block" type="submit" id="pw-submit">确认修改</button></form></div>';
    $('#pw-form').onsubmit = async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const box = $('#pw-error');
      box.hidden = true;
      if (f.new1.value !== f.new2.value) {
        box.textContent = '两次输入的新密码不一致';
        box.hidden = false;
        return;
      }
      try {
        await post('/api/staff/password', { old_password: f.old.value, new_password: f.new1.value });
        await loadMe();
        toast('密码已修改');
        afterLogin();
      } catch (e) {
        box.textContent = e.full;
        box.hidden = false;
      }
    };
  }

  // ---------- 今日实名认证 ----------
  async function viewRealname() {
    view.className = 'view narrow';
    const me = state.me;
    if (me.realname_today) {
      view.innerHTML = '<div class="card"><h2>今日实名认证</h2><p class="ok-text">✓ 您今天已完成实名认证，可以接诊。</p><a class="btn primary" href="#/home">进入工作台</a></div>';
      return;
    }
    view.innerHTML = '<div class="card"><h2>今日实名认证</h2>' +
      '<p class="muted">按照互联网诊疗管理规定，医师每天首次接诊前须完成实名认证。验证码将发送至您登记的手机 <b>' + esc(me.phone) + '</b>。</p>' +
      '<form id="rn-form"><div class="row-input"><input name="code" id="rn-code" inputmode="numeric" maxlength="6" placeholder="6 位验证码" autocomplete="one-time-code" required>' +
      '<button class="btn" type="button" id="rn-send">获取验证码</button></div>' +
      '<p class="form-error" id="rn-error" hidden></p>' +
      '<button class="btn primary block" type="submit" id="rn-submit">完成认证</button></form>' +
      '<p class="small"><a href="#/home">稍后认证，先看工作台</a></p></div>';
    const box = $('#rn-error');
    let timer;
    state.cleanup.push(() => clearInterval(timer));
    $('#rn-send').onclick = async () => {
      box.hidden = true;
      const btn = $('#rn-send');
      btn.disabled = true;
      try {
        await post('/api/staff/realname/code');
        toast('验证码已发送');
        let left = 60;
        btn.textContent = left + ' 秒后重发';
        timer = setInterval(() => {
          left--;
          if (left <= 0) { clearInterval(timer); btn.disabled = false; btn.textContent = '重新获取'; } else btn.textContent = left + ' 秒后重发';
        }, 1000);
      } catch (e) {
        btn.disabled = false;
        box.textContent = e.full;
        box.hidden = false;
      }
    };
    $('#rn-form').onsubmit = async (ev) => {
      ev.preventDefault();
      box.hidden = true;
      try {
        const r = await post('/api/staff/realname', { code: ev.target.code.value.trim() });
        state.me = Object.assign(state.me, r.staff, { realname_today: true });
        toast('实名认证成功');
        location.hash = '#/home';
      } catch (e) {
        box.textContent = e.full;
        box.hidden = false;
      }
    };
  }

  // ---------- home ----------
  function viewHome(alive) { return isPharmacist() ? viewQueue(alive) : viewWorklist(alive); }

  function patientLine(v) {
    const name = v.patient_name || (v.patient && v.patient.name) || '患者';
    const bits = [v.patient_gender || (v.patient && v.patient.gender), v.patient_age != null && v.patient_age !== '' ? v.patient_age + '岁' : ''].filter(Boolean);
    return '<b class="pname">' + esc(name) + '</b>' + (bits.length ? ' <span class="muted">' + esc(bits.join(' · ')) + '</span>' : '');
  }
  function condition(v) {
    const c = v.condition_summary || v.condition || '';
    return c ? '<p class="cond">' + esc(c.length > 120 ? c.slice(0, 120) + '…' : c) + '</p>' : '';
  }
  function visitCard(v, kind) {
    state.worklist[v.id] = v;
    const when = v.slot_start || v.slot_time || v.booked_at;
    const badge = kind === 'waiting' ? '<span class="queue">第 ' + esc(v.queue_position || '-') + ' 位</span>' : '<span class="tag">' + esc(v.status_label || '') + '</span>';
    const action = kind === 'ended' ? '查看' : kind === 'waiting' ? '进入问诊室' : '继续问诊';
    return '<a class="visit-card ' + kind + '" href="#/visit/' + encodeURIComponent(v.id) + '" data-visit="' + esc(v.id) + '">' +
      '<div class="vc-head">' + badge + patientLine(v) + '<span class="type">' + esc(v.type_label || '') + '</span></div>' +
      condition(v) +
      '<div class="vc-foot"><span class="muted">' + (when ? '预约 ' + esc(fmtTime(when)) : '') + '</span><span class="go">' + action + ' ›</span></div></a>';
  }

  async function viewWorklist(alive) {
    view.innerHTML = '<div class="page-head"><h2>工作台</h2><span class="muted" id="wl-updated"></span></div><div id="worklist"><div class="loading">正在加载…</div></div>';
    const load = async () => {
      let wl;
      try {
        wl = await get('/api/doctor/worklist');
      } catch (e) {
        if (!alive()) return;
        $('#worklist').innerHTML = e.missing ? missingBox('工作台') + openByID() : '<div class="card error-box">' + esc(e.full) + '</div>';
        bindOpenByID();
        return;
      }
      if (!alive()) return;
      const waiting = wl.waiting || [];
      const inProgress = wl.in_progress || [];
      const ended = wl.ended_today || [];
      const col = (title, list, kind, none) => '<section class="wl-col"><h3>' + title + ' <span class="count">' + list.length + '</span></h3>' +
        (list.length ? list.map((v) => visitCard(v, kind)).join('') : '<p class="muted none">' + none + '</p>') + '</section>';
      $('#worklist').innerHTML = '<div class="worklist">' +
        col('候诊', waiting, 'waiting', '暂无候诊患者') + col('问诊中', inProgress, 'in-progress', '暂无进行中的问诊') + col('今日已结束', ended, 'ended', '今天还没有结束的问诊') + '</div>';
      $('#wl-updated').textContent = '更新于 ' + fmtClock(new Date().toISOString());
    };
    await load();
    const refresh = debounce(load, 300);
    onFeed(() => refresh());
    // The stream says when the queue moves; a slow poll covers a lost stream.
    const t = setInterval(load, 60000);
    state.cleanup.push(() => clearInterval(t));
  }
  function openByID() {
    return '<form class="card inline-form" id="open-visit"><label>按问诊编号打开<input name="id" id="open-visit-id" placeholder="问诊编号"></label><button class="btn" type="submit">打开</button></form>';
  }
  function bindOpenByID() {
    const f = $('#open-visit');
    if (f) f.onsubmit = (ev) => { ev.preventDefault(); const id = f.id.value.trim(); if (id) location.hash = '#/visit/' + encodeURIComponent(id); };
  }

  // ---------- 我的排班 ----------
  async function viewSchedule(alive) {
    view.innerHTML = '<div class="page-head"><h2>我的排班</h2></div><div id="sched"><div class="loading">正在加载…</div></div>';
    const me = state.me;
    let doc = null;
    try { doc = await get('/api/public/doctors/' + encodeURIComponent(me.id)); } catch (e) {
      if (!alive()) return;
      $('#sched').innerHTML = e.missing ? missingBox('排班查询') : empty(e.message, '请联系医院在「在线问诊排班管理」中为您开通');
      return;
    }
    const days = [];
    for (let i = 0; i < 7; i++) days.push(shanghaiDate(i));
    const lists = await Promise.all(days.map((d) => get('/api/public/doctors/' + encodeURIComponent(me.id) + '/slots?date=' + d).then((r) => r.items || []).catch(() => [])));
    if (!alive()) return;
    const fees = (doc.fees || []).map((f) => '<span class="tag">' + esc(f.label) + ' ¥' + esc(f.fee_yuan || yuan(f.fee)) + ' / ' + esc(f.minutes) + ' 分钟</span>').join(' ');
    let html = '<div class="card"><div>' + esc(doc.department || '') + ' · ' + esc(doc.title || '') + '</div><div class="fees">' + (fees || '<span class="muted">未设置问诊费用</span>') + '</div>' +
      (doc.accepting === false ? '<p class="warn-text">当前未开放预约</p>' : '') + '</div>';
    let any = false;
    days.forEach((d, i) => {
      const list = lists[i];
      if (!list.length) return;
      any = true;
      const booked = list.reduce((n, s) => n + (s.booked || 0), 0);
      html += '<div class="card"><h3>' + esc(d) + (i === 0 ? '（今天）' : '') + ' <span class="muted small">已约 ' + booked + ' 人</span></h3><div class="slots">' +
        list.map((s) => '<div class="slot ' + esc(s.status) + '"><b>' + esc(fmtClock(s.start_at)) + '-' + esc(fmtClock(s.end_at)) + '</b><span>' + esc(s.visit_type_label || '') + '</span><span class="muted">' + esc(s.booked || 0) + '/' + esc(s.quota || 0) + '</span></div>').join('') +
        '</div></div>';
    });
    if (!any) html += empty('未来 7 天没有排班', '排班由医院在「在线问诊排班管理」中设置');
    $('#sched').innerHTML = html;
  }

  // ---------- 问诊室 ----------
  const roomTabs = [['chat', '对话'], ['emr', '病历'], ['rx', '处方'], ['exam', '检查检验'], ['record', '患者档案']];

  async function viewVisit(id, tab, alive) {
    tab = tab || (window.innerWidth >= 1000 ? 'emr' : 'chat');
    view.className = 'view wide';
    const room = { id, visit: null, msgs: new Map(), lastSeq: 0, es: null, tab };
    view.innerHTML = '<div class="room-head card" id="room-head"><div class="loading">正在加载…</div></div>' +
      '<div class="room-tabs" id="room-tabs">' + roomTabs.map(([k, t]) => '<a href="#/visit/' + encodeURIComponent(id) + '/' + k + '" class="' + (k === tab ? 'active ' : '') + 'tab-' + k + '">' + t + '</a>').join('') + '</div>' +
      '<div class="room' + (tab === 'chat' ? ' show-chat' : '') + '"><section class="pane chat-pane" id="chat-pane">' +
      '<div class="chat" id="chat"></div>' +
      '<form class="composer" id="composer"><textarea id="msg-text" rows="2" maxlength="2000" placeholder="输入消息，Enter 发送，Shift+Enter 换行"></textarea>' +
      '<div class="composer-actions"><label class="btn ghost small-btn">图片<input type="file" id="img-file" accept="image/*" hidden></label>' +
      '<button type="button" class="btn ghost small-btn" id="rec-btn">语音</button>' +
      '<button class="btn primary" type="submit" id="send-btn">发送</button></div></form></section>' +
      '<section class="pane side-pane" id="side-pane"></section></div>';
    try {
      room.visit = await get('/api/visits/' + encodeURIComponent(id));
    } catch (e) {
      if (!alive()) return;
      view.innerHTML = '<div class="card error-box">' + esc(e.full) + '</div><a class="btn" href="#/home">返回工作台</a>';
      return;
    }
    if (!alive()) return;
    if (!state.worklist[id]) {
      // Opened directly (a reload, a notice): the worklist has the patient's
      // name and condition.
      try {
        const wl = await get('/api/doctor/worklist');
        [].concat(wl.waiting || [], wl.in_progress || [], wl.ended_today || []).forEach((v) => { state.worklist[v.id] = v; });
      } catch (e) { /* the head shows what the visit has */ }
      if (!alive()) return;
    }
    renderRoomHead(room);
    // Messages, then the stream from the last one on.
    try {
      const r = await get('/api/visits/' + encodeURIComponent(id) + '/messages?limit=500');
      (r.messages || []).forEach((m) => addMsg(room, m));
    } catch (e) { fail(e); }
    if (!alive()) return;
    openVisitStream(room, alive);
    bindComposer(room);
    const side = $('#side-pane');
    // On a wide screen the chat is always there: the side shows the record.
    const sideTab = tab === 'chat' ? (window.innerWidth >= 1000 ? 'emr' : null) : tab;
    if (sideTab === 'emr') await paneEMR(room, side, alive);
    else if (sideTab === 'rx') {
      // The pharmacist's review shows at once in the open prescription.
      onFeed((name, data) => {
        if (name === 'notice' && data && (data.kind === 'rx_approved' || data.kind === 'rx_rejected') && alive() &&
          String(data.link || '').indexOf(id) >= 0) paneRx(room, side, alive);
      });
      await paneRx(room, side, alive);
    } else if (sideTab === 'exam') await paneExam(room, side, alive);
    else if (sideTab === 'record') await paneRecord(room, side, alive);
  }

  function renderRoomHead(room) {
    const v = room.visit;
    const w = state.worklist[v.id] || {};
    const info = Object.assign({}, w, v);
    let actions = '';
    if (v.status === 'waiting') actions = '<button class="btn primary" id="accept-btn">接诊</button>';
    else if (v.status === 'in_progress') actions = '<button class="btn danger" id="end-btn">结束问诊</button>';
    $('#room-head').innerHTML = '<div class="rh-main"><a class="back" href="#/home">‹ 工作台</a>' + patientLine(info) +
      '<span class="tag">' + esc(v.type_label) + '</span><span class="status s-' + esc(v.status) + '" id="visit-status">' + esc(v.status_label) + '</span>' +
      (v.status === 'waiting' && v.queue_position ? '<span class="queue">第 ' + esc(v.queue_position) + ' 位</span>' : '') +
      '</div>' + condition(info) + '<div class="rh-actions"><span class="muted small">' + (info.slot_start ? '预约时段 ' + esc(fmtTime(info.slot_start)) + (info.slot_end ? '-' + esc(fmtClock(info.slot_end)) : '') : '预约 ' + esc(fmtTime(v.booked_at))) + (v.accepted_at ? ' · 接诊 ' + esc(fmtTime(v.accepted_at)) : '') + '</span>' + actions + '</div>';
    const a = $('#accept-btn');
    if (a) a.onclick = () => transition(room, 'accept', a);
    const e = $('#end-btn');
    if (e) e.onclick = async () => {
      const ok = await dialog('<h3>结束问诊</h3><p>结束后患者和您都不能再发送消息；结束后 24 小时内仍可补开处方。确定结束本次问诊？</p>', () => true);
      if (ok) transition(room, 'end', e);
    };
    const composer = $('#composer');
    if (composer) {
      const closed = v.status === 'ended' || v.status === 'cancelled';
      composer.classList.toggle('disabled', closed || v.status === 'waiting');
      $('#msg-text').placeholder = closed ? '问诊已结束' : v.status === 'waiting' ? '接诊后才能给患者发消息' : '输入消息，Enter 发送，Shift+Enter 换行';
    }
  }

  async function transition(room, what, btn) {
    btn.disabled = true;
    try {
      room.visit = await post('/api/visits/' + encodeURIComponent(room.id) + '/' + what);
      toast(what === 'accept' ? '已接诊' : '问诊已结束');
      renderRoomHead(room);
    } catch (e) {
      btn.disabled = false;
      const box = document.createElement('p');
      box.className = 'form-error';
      box.id = 'room-error';
      box.textContent = e.full;
      if (e.message === '请先完成今日实名认证') {
        const a = document.createElement('a');
        a.href = '#/realname';
        a.textContent = ' 去认证 ›';
        box.append(a);
      }
      const old = $('#room-error');
      if (old) old.remove();
      $('#room-head').append(box);
    }
  }

  function addMsg(room, m) {
    if (!m || !m.seq || room.msgs.has(m.seq)) return;
    room.msgs.set(m.seq, m);
    if (m.seq > room.lastSeq) room.lastSeq = m.seq;
    const chat = $('#chat');
    if (!chat) return;
    const div = document.createElement('div');
    let cls = 'msg ';
    if (m.kind === 'system' || m.sender_role === 'system' || m.event) cls += 'sys';
    else cls += m.sender_role === 'doctor' ? 'mine' : 'theirs';
    div.className = cls;
    div.dataset.seq = m.seq;
    let body = '';
    if (m.attachment_id && m.kind === 'image') body = '<a href="/api/attachments/' + encodeURIComponent(m.attachment_id) + '" target="_blank" rel="noopener"><img class="msg-img" alt="图片" src="/api/attachments/' + encodeURIComponent(m.attachment_id) + '"></a>';
    else if (m.attachment_id && m.kind === 'voice') body = '<audio controls preload="none" src="/api/attachments/' + encodeURIComponent(m.attachment_id) + '"></audio>';
    else body = esc(m.body || sysText(m)).replace(/\n/g, '<br>');
    const who = cls.endsWith('sys') ? '' : '<div class="msg-meta">' + (m.sender_role === 'doctor' ? '我' : '患者') + ' · ' + esc(fmtClock(m.created_at)) + '</div>';
    div.innerHTML = who + '<div class="bubble' + (m.attachment_id ? ' media' : '') + '">' + body + '</div>';
    // Keep the order by seq even when the stream and the list overlap.
    const after = $$('.msg', chat).find((x) => Number(x.dataset.seq) > m.seq);
    if (after) chat.insertBefore(div, after); else chat.append(div);
    chat.scrollTop = chat.scrollHeight;
  }
  function sysText(m) {
    return ({ opened: '患者已进入候诊', accepted: '医生已接诊', ended: '问诊已结束', cancelled: '问诊已取消' })[m.event] || m.body || '';
  }

  function openVisitStream(room, alive) {
    let retry = 1000;
    let timer;
    const open = () => {
      if (!alive()) return;
      const es = new EventSource('/api/visits/' + encodeURIComponent(room.id) + '/events' + (room.lastSeq ? '?last_event_id=' + room.lastSeq : ''));
      room.es = es;
      es.onopen = () => { retry = 1000; setLive(true); };
      es.onerror = () => {
        setLive(false);
        if (es.readyState === EventSource.CLOSED) {
          timer = setTimeout(open, retry);
          retry = Math.min(retry * 2, 30000);
        }
      };
      const onMsg = (ev) => {
        try { addMsg(room, JSON.parse(ev.data)); } catch (e) { /* ignore */ }
      };
      es.addEventListener('message', onMsg);
      ['opened', 'accepted', 'ended', 'cancelled'].forEach((n) => es.addEventListener(n, async (ev) => {
        onMsg(ev);
        try { room.visit = await get('/api/visits/' + encodeURIComponent(room.id)); renderRoomHead(room); } catch (e) { /* keep */ }
      }));
      es.addEventListener('queue', (ev) => {
        try {
          const q = JSON.parse(ev.data);
          if (room.visit && room.visit.status === 'waiting') { room.visit.queue_position = q.position; renderRoomHead(room); }
        } catch (e) { /* ignore */ }
      });
    };
    open();
    state.cleanup.push(() => { clearTimeout(timer); if (room.es) room.es.close(); });
  }

  function bindComposer(room) {
    const form = $('#composer');
    const text = $('#msg-text');
    const send = async (input) => {
      try {
        const m = await post('/api/visits/' + encodeURIComponent(room.id) + '/messages', input);
        addMsg(room, m);
        return true;
      } catch (e) { fail(e); return false; }
    };
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const body = text.value.trim();
      if (!body) return;
      $('#send-btn').disabled = true;
      if (await send({ kind: 'text', body })) text.value = '';
      $('#send-btn').disabled = false;
    };
    text.onkeydown = (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
    };
    const upload = async (blob, kind, name) => {
      const fd = new FormData();
      fd.append('file', blob, name);
      try {
        const att = await api('POST', '/api/visits/' + encodeURIComponent(room.id) + '/attachments', fd);
        await send({ kind: att.kind || kind, attachment_id: att.id });
      } catch (e) { fail(e); }
    };
    $('#img-file').onchange = async (ev) => {
      const f = ev.target.files[0];
      ev.target.value = '';
      if (f) await upload(f, 'image', f.name);
    };
    const rec = $('#rec-btn');
    let recorder = null;
    let chunks = [];
    rec.onclick = async () => {
      if (recorder) { recorder.stop(); return; }
      if (!navigator.mediaDevices || !window.MediaRecorder) { toast('此设备不支持录音', 'error'); return; }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        // The visit accepts MP4/AAC, Ogg, MP3, AMR and WAV voice clips:
        // record in the first of those the browser can.
        const type = ['audio/mp4', 'audio/ogg;codecs=opus', 'audio/ogg'].find((t) => MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(t));
        recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        chunks = [];
        recorder.ondataavailable = (e) => chunks.push(e.data);
        recorder.onstop = async () => {
          stream.getTracks().forEach((t) => t.stop());
          const type = recorder.mimeType || 'audio/webm';
          recorder = null;
          rec.textContent = '语音';
          rec.classList.remove('recording');
          await upload(new Blob(chunks, { type }), 'voice', type.indexOf('mp4') >= 0 ? 'voice.m4a' : type.indexOf('ogg') >= 0 ? 'voice.ogg' : 'voice.webm');
        };
        recorder.start();
        rec.textContent = '● 停止并发送';
        rec.classList.add('recording');
      } catch (e) { toast('无法使用麦克风：' + e.message, 'error'); }
    };
    state.cleanup.push(() => { if (recorder) { recorder.onstop = null; recorder.stop(); } });
  }

  // ---------- 病历 ----------
  const emrFields = [['chief_complaint', '主诉', 2], ['present_illness', '现病史', 4], ['past_history', '既往史', 2], ['allergy_history', '过敏史', 1], ['physical_exam', '体格检查', 2]];

  async function paneEMR(room, pane, alive) {
    pane.innerHTML = '<div class="loading">正在加载病历…</div>';
    let rec = null;
    try { rec = await get('/api/visits/' + encodeURIComponent(room.id) + '/emr'); } catch (e) {
      if (e.missing) { pane.innerHTML = missingBox('电子病历'); return; }
      if (e.status !== 404) { pane.innerHTML = '<div class="card error-box">' + esc(e.full) + '</div>'; return; }
    }
    if (!alive()) return;
    let templates = [];
    try { templates = (await get('/api/doctor/emr-templates')) || []; if (templates.items) templates = templates.items; } catch (e) { templates = []; }
    if (!alive()) return;
    const signed = rec && rec.status === 'signed';
    const diags = (rec && rec.diagnoses ? rec.diagnoses.slice() : []);
    const ro = signed ? ' readonly' : '';
    pane.innerHTML = '<div class="card emr"><div class="pane-head"><h3>门诊病历</h3>' +
      (rec ? '<span class="status s-' + esc(rec.status) + '">' + esc(rec.status_label || (signed ? '已签名' : '草稿')) + (rec.version > 1 ? ' · 第 ' + esc(rec.version) + ' 版' : '') + '</span>' : '<span class="muted">尚未书写</span>') +
      (!signed && templates.length ? '<select id="emr-tpl"><option value="">套用模板…</option>' + templates.map((t, i) => '<option value="' + i + '">' + esc(t.name) + '</option>').join('') + '</select>' : '') + '</div>' +
      (signed ? '<p class="ok-text">✓ ' + esc(rec.doctor_name || '') + ' 已于 ' + esc(fmtTime(rec.signed_at)) + ' 电子签名。如需更正，请点「修订」生成新版本（原版本保留）。</p>' : '') +
      '<form id="emr-form">' + emrFields.map(([k, t, rows]) => '<label>' + t + '<textarea name="' + k + '" id="emr-' + k + '" rows="' + rows + '"' + ro + '>' + esc(rec ? rec[k] : '') + '</textarea></label>').join('') +
      '<div class="field"><span class="field-label">诊断（ICD-10）</span><div class="chips" id="diag-chips"></div>' +
      (signed ? '' : '<div class="search"><input id="icd-q" placeholder="输入诊断名称、编码或拼音首字母检索 ICD-10" autocomplete="off"><div class="results" id="icd-results" hidden></div></div>') + '</div>' +
      '<label>处理意见<textarea name="advice" id="emr-advice" rows="3"' + ro + '>' + esc(rec ? rec.advice : '') + '</textarea></label>' +
      '<div class="actions">' + (signed ? '<button type="button" class="btn" id="emr-revise">修订</button>' :
        '<button type="submit" class="btn" id="emr-save">保存草稿</button><button type="button" class="btn primary" id="emr-sign">签名</button>') + '</div></form></div>';
    const chips = () => {
      $('#diag-chips').innerHTML = diags.length ? diags.map((d, i) => '<span class="chip">' + esc(d.code) + ' ' + esc(d.name) + (signed ? '' : '<button type="button" data-i="' + i + '" aria-label="删除">×</button>') + '</span>').join('') : '<span class="muted">未填写诊断</span>';
      $$('#diag-chips button').forEach((b) => { b.onclick = () => { diags.splice(Number(b.dataset.i), 1); chips(); }; });
    };
    chips();
    room.diagnoses = diags;
    const form = $('#emr-form');
    const collect = () => {
      const o = { diagnoses: diags };
      emrFields.forEach(([k]) => { o[k] = form[k].value; });
      o.advice = form.advice.value;
      return o;
    };
    if (signed) {
      $('#emr-revise').onclick = async () => {
        const r = await dialog('<h3>修订病历</h3><p class="muted">已签名的病历不会被修改或删除，修订将生成新的版本。</p><label>修订原因<textarea name="reason" id="revise-reason" rows="2" required></textarea></label>',
          (f) => post('/api/emr/' + encodeURIComponent(rec.id) + '/revise', { reason: f.reason.value.trim() }));
        if (r) { toast('已生成新版本，请修改后重新签名'); paneEMR(room, pane, alive); }
      };
      return;
    }
    const tpl = $('#emr-tpl');
    if (tpl) tpl.onchange = () => {
      const t = templates[Number(tpl.value)];
      if (!t) return;
      emrFields.forEach(([k]) => { if (t[k]) form[k].value = t[k]; });
      if (t.advice) form.advice.value = t.advice;
      (t.diagnoses || []).forEach((d) => { if (!diags.some((x) => x.code === d.code)) diags.push(d); });
      chips();
      tpl.value = '';
      toast('已套用模板「' + t.name + '」，请核对后保存');
    };
    bindSearch($('#icd-q'), $('#icd-results'), async (q) => {
      const r = await get('/api/icd10?q=' + encodeURIComponent(q) + '&limit=12');
      return (Array.isArray(r) ? r : (r && r.items) || []).map((d) => ({ html: '<b>' + esc(d.code) + '</b> ' + esc(d.name), value: d }));
    }, (d) => { if (!diags.some((x) => x.code === d.code)) diags.push({ code: d.code, name: d.name }); chips(); }, 'ICD-10 检索');
    const save = async () => {
      rec = await put('/api/visits/' + encodeURIComponent(room.id) + '/emr', collect());
      return rec;
    };
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      try { await save(); toast('病历草稿已保存'); paneEMR(room, pane, alive); } catch (e) { fail(e); }
    };
    $('#emr-sign').onclick = async () => {
      try { await save(); } catch (e) { fail(e); return; }
      const r = await pinThen('病历签名', (pin) => post('/api/emr/' + encodeURIComponent(rec.id) + '/sign', { pin }));
      if (r) { toast('病历已签名'); paneEMR(room, pane, alive); }
    };
  }

  // bindSearch wires a search box: fetch(q) → [{html, value}], pick(value).
  function bindSearch(input, results, fetchFn, pick, what) {
    if (!input) return;
    let seq = 0;
    const run = debounce(async () => {
      const q = input.value.trim();
      const my = ++seq;
      if (!q) { results.hidden = true; return; }
      let items;
      try { items = await fetchFn(q); } catch (e) {
        if (my !== seq) return;
        results.innerHTML = '<div class="result none">' + esc(e.missing ? what + '暂未开通' : e.full) + '</div>';
        results.hidden = false;
        return;
      }
      if (my !== seq) return;
      results.innerHTML = items.length ? items.map((it, i) => '<button type="button" class="result" data-i="' + i + '">' + it.html + '</button>').join('') : '<div class="result none">没有找到匹配的项目</div>';
      results.hidden = false;
      $$('button.result', results).forEach((b) => {
        b.onclick = () => { pick(items[Number(b.dataset.i)].value); input.value = ''; results.hidden = true; };
      });
    }, 250);
    input.oninput = run;
    input.onkeydown = (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); const b = $('button.result', results); if (b) b.click(); } };
  }

  // ---------- 处方 ----------
  const defaultPhrases = {
    frequency: ['qd 每日一次', 'bid 每日两次', 'tid 每日三次', 'qid 每日四次', 'qn 每晚一次', 'prn 必要时'],
    usage: ['口服', '含服', '外用', '皮下注射', '雾化吸入', '滴眼'],
    dosage: ['mg', 'g', 'μg', 'ml', '片', '粒', '袋', '支'],
  };
  async function phrases() {
    if (state.phrases) return state.phrases;
    const out = {};
    await Promise.all(['frequency', 'usage', 'dosage'].map(async (c) => {
      try {
        const r = await get('/api/doctor/phrases?category=' + c);
        const list = (Array.isArray(r) ? r : (r && r.items) || []).map((p) => p.text).filter(Boolean);
        out[c] = list.length ? list : defaultPhrases[c];
      } catch (e) { out[c] = defaultPhrases[c]; }
    }));
    state.phrases = out;
    return out;
  }
  function datalists(ph) {
    return ['frequency', 'usage', 'dosage'].map((c) => '<datalist id="dl-' + c + '">' + ph[c].map((t) => '<option value="' + esc(t) + '">').join('') + '</datalist>').join('');
  }
  async function catalogSearch(kind, q) {
    const r = await get('/doctor/api/catalog?kind=' + kind + '&q=' + encodeURIComponent(q));
    return r.items || [];
  }
  async function favourites(kind) {
    try {
      const r = await get('/api/doctor/favourites?kind=' + kind);
      return Array.isArray(r) ? r : (r && r.items) || [];
    } catch (e) { return []; }
  }

  async function paneRx(room, pane, alive) {
    pane.innerHTML = '<div class="loading">正在加载处方…</div>';
    let list = [];
    try { list = (await get('/api/prescriptions?visit=' + encodeURIComponent(room.id))).items || []; } catch (e) { pane.innerHTML = '<div class="card error-box">' + esc(e.full) + '</div>'; return; }
    // Opened straight on 处方 (a reload, the tab): the diagnosis comes
    // from the visit's EMR, as when it was written in this room.
    if (!room.diagnoses && !list.length) {
      try { const rec = await get('/api/visits/' + encodeURIComponent(room.id) + '/emr'); room.diagnoses = (rec && rec.diagnoses) || []; } catch (e) { /* none yet */ }
    }
    const ph = await phrases();
    const favs = await favourites('drug');
    let plans = [];
    try { const r = await get('/api/doctor/plans'); plans = Array.isArray(r) ? r : (r && r.items) || []; } catch (e) { plans = []; }
    if (!alive()) return;
    // The newest version of each series: what the doctor works on.
    const latest = list.filter((p) => !list.some((q) => q.previous_id === p.id));
    const current = latest.length ? latest[latest.length - 1] : null;
    renderRx(room, pane, alive, { list, latest, current, ph, favs, plans, editing: !current || current.status === 'draft' });
  }

  function rxLinesFrom(p) {
    return (p.items || []).map((it) => ({ code: it.code, name: it.name, spec: it.spec, unit: it.unit, price_fen: it.price_fen, quantity: it.quantity, dose: it.dose || '', dose_unit: it.dose_unit || '', frequency: it.frequency || '', route: it.route || '', days: it.days || '' }));
  }

  function renderRx(room, pane, alive, ctx) {
    const { current, ph, favs, plans } = ctx;
    const st = current ? current.status : '';
    const rejected = st === 'rejected';
    if (!ctx.lines) ctx.lines = current ? rxLinesFrom(current) : [];
    if (ctx.diagnosis === undefined) ctx.diagnosis = current ? current.diagnosis : (room.diagnoses || []).map((d) => d.name).join('；');
    const editing = ctx.editing;
    const lines = ctx.lines;
    let html = '<div class="card rx"><div class="pane-head"><h3>处方</h3>' +
      (current ? '<span class="status s-' + esc(st) + '" id="rx-status">' + esc(current.status_label) + (current.revision > 1 ? ' · 第 ' + esc(current.revision) + ' 版' : '') + '</span>' : '<span class="muted">尚未开具</span>') +
      (editing && plans.length ? '<select id="rx-plan"><option value="">套用治疗方案…</option>' + plans.map((p, i) => '<option value="' + i + '">' + esc(p.name) + '</option>').join('') + '</select>' : '') + '</div>';
    if (rejected) {
      html += '<div class="reject-box" id="rx-reject"><b>药师驳回：</b>' + esc(current.review_reason) + '<div class="muted small">' + esc(fmtTime(current.reviewed_at)) + '</div>' +
        (editing ? '' : '<button class="btn primary" id="rx-revise">修改后重新提交</button>') + '</div>';
    }
    if (st === 'under_review') html += '<p class="info-text">已提交药师审核，请等待审核结果。</p>';
    if (st === 'approved' || st === 'paid' || st === 'sent_to_his') html += '<p class="ok-text">✓ 药师已审核通过' + (st === 'paid' ? '，患者已支付' : st === 'sent_to_his' ? '，已发送至医院药房' : '，等待患者支付') + '。</p>';
    if (st === 'signed') html += '<p class="info-text">已电子签名（' + esc(fmtTime(current.signed_at)) + '），请提交药师审核。</p>';
    html += '<label>诊断<input id="rx-diagnosis" value="' + esc(ctx.diagnosis) + '"' + (editing ? '' : ' readonly') + ' placeholder="与病历诊断一致"></label>';
    html += '<div class="rx-lines" id="rx-lines">' + (lines.length ? lines.map((l, i) => rxLine(l, i, editing)).join('') : '<p class="muted">' + (editing ? '请从下方检索药品，或点击常用药品添加（每张处方最多 5 种）' : '无药品') + '</p>') + '</div>';
    if (editing) {
      html += '<div class="search"><input id="drug-q" placeholder="检索药品：名称或编码（当前医院药品目录）" autocomplete="off"><div class="results" id="drug-results" hidden></div></div>';
      if (favs.length) html += '<div class="favs"><span class="muted small">常用药品：</span>' + favs.map((f, i) => '<button type="button" class="chip-btn" data-fav="' + i + '">' + esc(f.name || f.code) + '</button>').join('') + '</div>';
    }
    html += '<div class="rx-total">合计：<b id="rx-total">¥' + yuan(lines.reduce((n, l) => n + (l.price_fen || 0) * (Number(l.quantity) || 0), 0)) + '</b></div>';
    html += '<p class="form-error" id="rx-error" hidden></p><div class="actions">';
    if (editing) html += '<button class="btn" id="rx-save">保存</button><button class="btn primary" id="rx-sign">签名</button>';
    if (st === 'signed') html += '<button class="btn primary" id="rx-submit">提交审核</button>';
    html += '</div>' + datalists(ph) + '</div>';
    if (ctx.list.length > 1) {
      html += '<div class="card"><h3>处方版本</h3>' + ctx.list.slice().reverse().map((p) => '<div class="hist-row"><span>第 ' + esc(p.revision) + ' 版</span><span class="status s-' + esc(p.status) + '">' + esc(p.status_label) + '</span><span>¥' + esc(p.total) + '</span>' +
        (p.review_reason ? '<span class="muted">驳回理由：' + esc(p.review_reason) + '</span>' : '') + '</div>').join('') + '</div>';
    }
    pane.innerHTML = html;
    const err = $('#rx-error');
    const showErr = (e) => { err.textContent = e.full || e.message; err.hidden = false; };
    const reload = () => paneRx(room, pane, alive);
    const sync = () => {
      $$('.rx-line', pane).forEach((row) => {
        const l = lines[Number(row.dataset.i)];
        $$('[data-k]', row).forEach((inp) => { l[inp.dataset.k] = inp.value; });
      });
      ctx.diagnosis = $('#rx-diagnosis').value;
    };
    const add = (it) => {
      sync();
      if (lines.some((l) => l.code === it.code)) { toast('该药品已在处方中'); return; }
      if (it.restricted) toast(it.name + '：' + it.restricted, 'error');
      lines.push({ code: it.code, name: it.name, spec: it.spec || '', unit: it.unit || '', price_fen: it.price_fen || 0, quantity: 1, dose: '', dose_unit: '', frequency: '', route: '', days: '' });
      renderRx(room, pane, alive, ctx);
    };
    if (editing) {
      bindSearch($('#drug-q'), $('#drug-results'), async (q) => (await catalogSearch('drug', q)).map((d) => ({
        html: '<b>' + esc(d.name) + '</b> <span class="muted">' + esc(d.spec) + ' · ' + esc(d.code) + '</span> ¥' + esc(d.price) + '/' + esc(d.unit) + (d.restricted ? ' <span class="restricted">麻精药品 不可在线开具</span>' : ''),
        value: d,
      })), add, '药品目录');
      $$('[data-fav]', pane).forEach((b) => { b.onclick = () => add(favs[Number(b.dataset.fav)]); });
      $$('[data-del]', pane).forEach((b) => { b.onclick = () => { sync(); lines.splice(Number(b.dataset.del), 1); renderRx(room, pane, alive, ctx); }; });
      const planSel = $('#rx-plan');
      if (planSel) planSel.onchange = async () => {
        const p = plans[Number(planSel.value)];
        planSel.value = '';
        if (!p) return;
        sync();
        for (const d of p.drugs || []) {
          if (lines.some((l) => l.code === d.code)) continue;
          let it = null;
          try { it = (await catalogSearch('drug', d.code)).find((x) => x.code === d.code); } catch (e) { /* keep the code */ }
          lines.push({ code: d.code, name: (it && it.name) || d.name || d.code, spec: (it && it.spec) || d.spec || '', unit: (it && it.unit) || d.unit || '', price_fen: (it && it.price_fen) || d.price_fen || 0,
            quantity: d.quantity || 1, dose: d.dosage || '', dose_unit: '', frequency: d.frequency || '', route: d.usage || '', days: d.days || '' });
        }
        if (!ctx.diagnosis && p.diagnoses) ctx.diagnosis = p.diagnoses.map((x) => x.name).join('；');
        renderRx(room, pane, alive, ctx);
        toast('已套用治疗方案「' + p.name + '」，请核对剂量后保存');
      };
      const draft = () => {
        sync();
        return { visit_id: room.id, diagnosis: ctx.diagnosis.trim(), items: lines.map((l) => ({ code: l.code, quantity: Number(l.quantity) || 0, dose: String(l.dose || ''), dose_unit: String(l.dose_unit || ''), frequency: l.frequency, route: l.route, days: Number(l.days) || 0 })) };
      };
      // save writes the draft: a new prescription, the current draft, or a
      // new version of the rejected one.
      const save = async () => {
        const d = draft();
        let p;
        if (current && current.status === 'draft') p = await put('/api/prescriptions/' + encodeURIComponent(current.id), d);
        else if (current && current.status === 'rejected') p = await post('/api/prescriptions/' + encodeURIComponent(current.id) + '/revise', d);
        else p = await post('/api/prescriptions', d);
        return p;
      };
      $('#rx-save').onclick = async () => {
        err.hidden = true;
        try { await save(); toast('处方已保存'); reload(); } catch (e) { showErr(e); }
      };
      $('#rx-sign').onclick = async () => {
        err.hidden = true;
        let p;
        try { p = await save(); } catch (e) { showErr(e); return; }
        const r = await pinThen('处方签名', (pin) => post('/api/prescriptions/' + encodeURIComponent(p.id) + '/sign', { pin }));
        if (r) toast('处方已签名，请提交审核');
        reload();
      };
    }
    const sub = $('#rx-submit');
    if (sub) sub.onclick = async () => {
      sub.disabled = true;
      try { await post('/api/prescriptions/' + encodeURIComponent(current.id) + '/submit'); toast('已提交药师审核'); reload(); } catch (e) { sub.disabled = false; showErr(e); }
    };
    const rev = $('#rx-revise');
    if (rev) rev.onclick = () => { ctx.editing = true; renderRx(room, pane, alive, ctx); };
  }

  function rxLine(l, i, editing) {
    const ro = editing ? '' : ' readonly';
    const inp = (k, ph, cls, list) => '<input data-k="' + k + '" class="' + cls + '" value="' + esc(l[k]) + '" placeholder="' + ph + '"' + (list ? ' list="' + list + '"' : '') + ro + '>';
    return '<div class="rx-line" data-i="' + i + '"><div class="rx-drug"><b>' + (i + 1) + '. ' + esc(l.name) + '</b> <span class="muted">' + esc(l.spec) + '</span> <span class="muted">¥' + yuan(l.price_fen) + '/' + esc(l.unit) + '</span>' +
      (editing ? '<button type="button" class="link danger-text" data-del="' + i + '">删除</button>' : '') + '</div>' +
      '<div class="rx-fields"><label>单次剂量' + inp('dose', '5', 'w-s', '') + inp('dose_unit', 'mg', 'w-s', 'dl-dosage') + '</label>' +
      '<label>频次' + inp('frequency', 'qd', 'w-m', 'dl-frequency') + '</label>' +
      '<label>天数' + inp('days', '7', 'w-xs', '') + '</label>' +
      '<label>用法' + inp('route', '口服', 'w-m', 'dl-usage') + '</label>' +
      '<label>数量' + inp('quantity', '1', 'w-xs', '') + esc(l.unit) + '</label></div></div>';
  }

  // ---------- 检查检验 ----------
  async function paneExam(room, pane, alive) {
    pane.innerHTML = '<div class="loading">正在加载…</div>';
    let orders;
    try { orders = await get('/api/visits/' + encodeURIComponent(room.id) + '/exam-orders'); } catch (e) {
      if (!alive()) return;
      pane.innerHTML = e.missing ? missingBox('检查检验申请') : '<div class="card error-box">' + esc(e.full) + '</div>';
      return;
    }
    orders = Array.isArray(orders) ? orders : (orders && orders.items) || [];
    if (!alive()) return;
    const draft = { kind: 'exam', items: [], note: '' };
    const favs = { exam: await favourites('exam'), lab: await favourites('lab') };
    const paint = () => {
      let html = '<div class="card"><div class="pane-head"><h3>检查检验申请</h3></div>' +
        (orders.length ? orders.map((o) => '<div class="order"><div><span class="tag">' + esc(o.kind_label) + '</span> <span class="status s-' + esc(o.status) + '">' + esc(o.status_label) + '</span> <b>¥' + esc(money(o.total_fen != null ? o.total_fen : o.total)) + '</b></div>' +
          '<ul>' + (o.items || []).map((it) => '<li>' + esc(it.name || it.code) + ' × ' + esc(it.quantity) + (it.price != null ? ' <span class="muted">¥' + esc(money(it.price)) + '</span>' : '') + '</li>').join('') + '</ul>' +
          (o.send_error ? '<p class="muted small">' + esc(o.send_error) + '</p>' : '') +
          (o.status === 'draft' ? '<button class="btn primary small-btn" data-sign="' + esc(o.id) + '">签名并发送</button>' : '') + '</div>').join('') : '<p class="muted">本次问诊还没有检查检验申请</p>') + '</div>';
      html += '<div class="card"><h3>新开申请</h3><div class="seg"><label><input type="radio" name="ek" value="exam"' + (draft.kind === 'exam' ? ' checked' : '') + '>检查</label><label><input type="radio" name="ek" value="lab"' + (draft.kind === 'lab' ? ' checked' : '') + '>检验</label></div>' +
        '<div class="search"><input id="exam-q" placeholder="检索' + (draft.kind === 'exam' ? '检查' : '检验') + '项目：名称或编码" autocomplete="off"><div class="results" id="exam-results" hidden></div></div>' +
        (favs[draft.kind].length ? '<div class="favs"><span class="muted small">常用：</span>' + favs[draft.kind].map((f, i) => '<button type="button" class="chip-btn" data-fav="' + i + '">' + esc(f.name || f.code) + '</button>').join('') + '</div>' : '') +
        '<ul class="exam-items">' + draft.items.map((it, i) => '<li>' + esc(it.name) + ' <span class="muted">¥' + esc(it.price) + '</span> × <input class="w-xs" data-q="' + i + '" value="' + esc(it.quantity) + '"> <button type="button" class="link danger-text" data-del="' + i + '">删除</button></li>').join('') + '</ul>' +
        '<label>备注<input id="exam-note" value="' + esc(draft.note) + '" placeholder="如：空腹"></label>' +
        '<div class="actions"><button class="btn primary" id="exam-save"' + (draft.items.length ? '' : ' disabled') + '>保存申请</button></div></div>';
      pane.innerHTML = html;
      $$('input[name=ek]', pane).forEach((r) => { r.onchange = () => { draft.kind = r.value; draft.items = []; paint(); }; });
      const add = (it) => { if (!draft.items.some((x) => x.code === it.code)) draft.items.push({ code: it.code, name: it.name, price: it.price, quantity: 1 }); draft.note = $('#exam-note').value; paint(); };
      bindSearch($('#exam-q'), $('#exam-results'), async (q) => (await catalogSearch(draft.kind, q)).map((d) => ({ html: '<b>' + esc(d.name) + '</b> <span class="muted">' + esc(d.code) + '</span> ¥' + esc(d.price), value: d })), add, '检查检验目录');
      $$('[data-fav]', pane).forEach((b) => { b.onclick = () => add(favs[draft.kind][Number(b.dataset.fav)]); });
      $$('[data-del]', pane).forEach((b) => { b.onclick = () => { draft.items.splice(Number(b.dataset.del), 1); paint(); }; });
      $$('[data-q]', pane).forEach((inp) => { inp.onchange = () => { draft.items[Number(inp.dataset.q)].quantity = Number(inp.value) || 1; }; });
      $('#exam-save').onclick = async () => {
        try {
          await post('/api/visits/' + encodeURIComponent(room.id) + '/exam-orders', { kind: draft.kind, items: draft.items.map((it) => ({ code: it.code, quantity: it.quantity })), note: $('#exam-note').value });
          toast('申请已保存，请签名发送');
          paneExam(room, pane, alive);
        } catch (e) { fail(e); }
      };
      $$('[data-sign]', pane).forEach((b) => {
        b.onclick = async () => {
          const r = await pinThen('检查检验申请签名', (pin) => post('/api/exam-orders/' + encodeURIComponent(b.dataset.sign) + '/sign', { pin }));
          if (r) { toast('已签名，申请将发送至医院'); paneExam(room, pane, alive); }
        };
      });
    };
    paint();
  }

  // ---------- 患者档案 ----------
  async function loadRecord(pid) { return get('/api/doctor/patients/' + encodeURIComponent(pid) + '/record'); }
  function recordHTML(rec) {
    const p = rec.patient || {};
    let html = '<div class="card"><h3>' + esc(p.name || '患者') + ' <span class="muted">' + esc([p.gender, p.age != null ? p.age + '岁' : ''].filter(Boolean).join(' · ')) + '</span></h3>' +
      (p.tags && p.tags.length ? '<div>' + p.tags.map((t) => '<span class="tag">' + esc(t) + '</span>').join(' ') + '</div>' : '') + '</div>';
    const visits = rec.visits || [];
    if (!visits.length) return html + empty('暂无就诊记录');
    visits.forEach((x) => {
      const v = x.visit || {};
      const e = x.emr;
      html += '<div class="card rec-visit"><div class="pane-head"><b>' + esc(fmtTime(v.booked_at || v.created_at)) + '</b><span class="tag">' + esc(v.type_label || '') + '</span><span class="status s-' + esc(v.status) + '">' + esc(v.status_label || '') + '</span></div>';
      if (e) {
        html += '<dl>' + [['主诉', e.chief_complaint], ['现病史', e.present_illness], ['既往史', e.past_history], ['过敏史', e.allergy_history], ['体格检查', e.physical_exam],
          ['诊断', (e.diagnoses || []).map((d) => d.code + ' ' + d.name).join('；')], ['处理意见', e.advice]].filter((r) => r[1]).map((r) => '<dt>' + r[0] + '</dt><dd>' + esc(r[1]) + '</dd>').join('') + '</dl>';
      } else html += '<p class="muted">无已签名病历</p>';
      (x.prescriptions || []).forEach((p) => {
        html += '<div class="rec-rx"><b>处方</b> <span class="status s-' + esc(p.status) + '">' + esc(p.status_label) + '</span> ' + (p.items || []).map((it) => esc(it.name) + ' ' + esc(it.dose || '') + esc(it.dose_unit || '') + ' ' + esc(it.frequency || '')).join('；') + '</div>';
      });
      html += '</div>';
    });
    return html;
  }
  async function paneRecord(room, pane, alive) {
    pane.innerHTML = '<div class="loading">正在加载患者档案…</div>';
    try {
      const rec = await loadRecord(room.visit.patient_id);
      if (!alive()) return;
      pane.innerHTML = recordHTML(rec);
    } catch (e) {
      if (!alive()) return;
      pane.innerHTML = e.missing ? missingBox('患者档案') : '<div class="card error-box">' + esc(e.full) + '</div>';
    }
  }

  // ---------- 患者管理 ----------
  async function viewPatients(alive) {
    view.innerHTML = '<div class="page-head"><h2>患者管理</h2></div>' +
      '<form class="filters card" id="pt-filter"><input name="q" placeholder="姓名检索"><select name="group" id="pt-group"><option value="">全部分组</option></select>' +
      '<input name="tag" placeholder="标签"><label class="check"><input type="checkbox" name="key">仅重点患者</label><button class="btn" type="submit">筛选</button></form><div id="pt-list"><div class="loading">正在加载…</div></div>';
    let groups = [];
    try { const g = await get('/api/doctor/patient-groups'); groups = Array.isArray(g) ? g : (g && g.items) || []; } catch (e) { groups = []; }
    if (!alive()) return;
    $('#pt-group').innerHTML += groups.map((g) => '<option value="' + esc(g.name) + '">' + esc(g.name) + '</option>').join('');
    const form = $('#pt-filter');
    const load = async () => {
      const qs = new URLSearchParams();
      if (form.q.value.trim()) qs.set('q', form.q.value.trim());
      if (form.group.value) qs.set('group', form.group.value);
      if (form.tag.value.trim()) qs.set('tag', form.tag.value.trim());
      if (form.key.checked) qs.set('key', '1');
      let list;
      try { list = await get('/api/doctor/patients?' + qs); } catch (e) {
        if (!alive()) return;
        $('#pt-list').innerHTML = e.missing ? missingBox('患者管理') : '<div class="card error-box">' + esc(e.full) + '</div>';
        return;
      }
      if (!alive()) return;
      list = Array.isArray(list) ? list : (list && list.items) || [];
      $('#pt-list').innerHTML = list.length ? '<div class="card table-wrap"><table class="table"><thead><tr><th>患者</th><th>分组</th><th>标签</th><th>就诊</th><th>最近就诊</th><th></th></tr></thead><tbody>' +
        list.map((p, i) => '<tr><td>' + (p.key ? '<span class="key" title="重点患者">★</span>' : '') + '<b>' + esc(p.name) + '</b> <span class="muted">' + esc([p.gender, p.age != null ? p.age + '岁' : ''].filter(Boolean).join(' ')) + '</span>' + (p.note ? '<div class="muted small">' + esc(p.note) + '</div>' : '') + '</td>' +
          '<td>' + (p.groups || []).map((g) => '<span class="tag">' + esc(g) + '</span>').join(' ') + '</td><td>' + (p.tags || []).map((g) => '<span class="tag alt">' + esc(g) + '</span>').join(' ') + '</td>' +
          '<td>' + esc(p.visit_count || 0) + ' 次</td><td>' + esc(fmtTime(p.last_visit_at)) + '</td>' +
          '<td class="nowrap"><button class="link" data-edit="' + i + '">编辑</button> <a href="#/patient/' + encodeURIComponent(p.patient_id) + '">档案</a></td></tr>').join('') + '</tbody></table></div>' : empty('暂无患者', '与您有过问诊的患者会出现在这里');
      $$('[data-edit]').forEach((b) => {
        b.onclick = async () => {
          const p = list[Number(b.dataset.edit)];
          const r = await dialog('<h3>编辑患者：' + esc(p.name) + '</h3>' +
            '<div class="field"><span class="field-label">分组</span>' + (groups.map((g) => '<label class="check"><input type="checkbox" name="g" value="' + esc(g.name) + '"' + ((p.groups || []).includes(g.name) ? ' checked' : '') + '>' + esc(g.name) + '</label>').join('') || '<span class="muted">暂无分组</span>') + '</div>' +
            '<label>新建分组<input name="newgroup" placeholder="可选，如：高血压随访"></label>' +
            '<label>标签（用逗号分隔）<input name="tags" id="edit-tags" value="' + esc((p.tags || []).join('，')) + '"></label>' +
            '<label class="check"><input type="checkbox" name="key"' + (p.key ? ' checked' : '') + '>重点患者</label>' +
            '<label>备注<input name="note" value="' + esc(p.note || '') + '"></label>', async (f) => {
            const gs = $$('input[name=g]:checked', f).map((x) => x.value);
            const ng = f.newgroup.value.trim();
            if (ng) { await post('/api/doctor/patient-groups', { name: ng }); gs.push(ng); }
            return put('/api/doctor/patients/' + encodeURIComponent(p.patient_id), { groups: gs, tags: f.tags.value.split(/[,，、\s]+/).filter(Boolean), key: f.key.checked, note: f.note.value });
          });
          if (r) { toast('已保存'); viewPatients(alive); }
        };
      });
    };
    form.onsubmit = (ev) => { ev.preventDefault(); load(); };
    await load();
  }

  async function viewPatient(pid, alive) {
    view.innerHTML = '<div class="page-head"><a class="back" href="#/patients">‹ 患者管理</a><h2>患者档案</h2></div><div id="pt-record"><div class="loading">正在加载…</div></div>';
    try {
      const rec = await loadRecord(pid);
      if (!alive()) return;
      $('#pt-record').innerHTML = recordHTML(rec);
    } catch (e) {
      if (!alive()) return;
      $('#pt-record').innerHTML = e.missing ? missingBox('患者档案') : '<div class="card error-box">' + esc(e.full) + '</div>';
    }
  }

  // ---------- 消息 ----------
  async function viewNotices(alive) {
    state.unread = 0;
    renderChrome();
    view.innerHTML = '<div class="page-head"><h2>消息</h2></div><div id="notices"><div class="loading">正在加载…</div></div>';
    const load = async () => {
      let list;
      try { list = await get('/api/doctor/notices?limit=100'); } catch (e) {
        if (!alive()) return;
        $('#notices').innerHTML = e.missing ? missingBox('消息中心') : '<div class="card error-box">' + esc(e.full) + '</div>';
        return;
      }
      if (!alive()) return;
      list = Array.isArray(list) ? list : (list && list.items) || [];
      if (list.some((n) => !n.read)) {
        post('/api/doctor/notices/read', { ids: 'all' }).then(() => { state.unread = 0; renderChrome(); }).catch(() => { /* shown again next time */ });
      }
      $('#notices').innerHTML = list.length ? '<div class="card">' + list.map((n) => '<div class="notice' + (n.read ? '' : ' unread') + '"><div class="n-head"><b>' + esc(n.title) + '</b><span class="muted small">' + esc(fmtTime(n.created_at)) + '</span></div>' +
        '<p>' + esc(n.body) + '</p>' + (n.link ? '<a href="' + esc(noticeLink(n.link, n.kind)) + '">查看 ›</a>' : '') + '</div>').join('') + '</div>' : empty('暂无消息');
    };
    await load();
    onFeed((name) => { if (name === 'notice') load(); });
  }
  // noticeLink maps a notice's link to the app's routes (only local links).
  function noticeLink(link, kind) {
    const m = String(link).match(/visits?\/([\w-]+)/);
    if (m) return '#/visit/' + m[1] + (String(kind).indexOf('rx') >= 0 ? '/rx' : '');
    return String(link).startsWith('#/') ? link : '#/home';
  }

  // ---------- 药师：审方 ----------
  async function rxContext(id) {
    try { return await get('/doctor/api/rx/' + encodeURIComponent(id) + '/context'); } catch (e) { return { patient: {}, doctor: {} }; }
  }
  function rxCard(p, ctx, href) {
    const pt = ctx.patient || {};
    const dr = ctx.doctor || {};
    return '<a class="visit-card rx-card" href="' + href + '"><div class="vc-head"><b class="pname">' + esc(pt.name || '患者') + '</b><span class="muted">' + esc([pt.gender, pt.age ? pt.age + '岁' : ''].filter(Boolean).join(' · ')) + '</span>' +
      '<span class="status s-' + esc(p.status) + '">' + esc(p.status_label) + '</span></div>' +
      '<p class="cond">诊断：' + esc(p.diagnosis) + '</p><p class="muted small">' + (p.items || []).map((it) => esc(it.name)).join('、') + '</p>' +
      '<div class="vc-foot"><span class="muted">' + esc(dr.name || '') + ' ' + esc(dr.department || '') + ' · ' + esc(fmtTime(p.submitted_at || p.reviewed_at)) + (p.revision > 1 ? ' · 第 ' + esc(p.revision) + ' 版' : '') + '</span><span>¥' + esc(p.total) + ' ›</span></div></a>';
  }

  async function viewQueue(alive) {
    view.innerHTML = '<div class="page-head"><h2>待审处方</h2><span class="muted" id="q-updated"></span></div><div id="queue"><div class="loading">正在加载…</div></div>';
    const load = async () => {
      let items;
      try { items = (await get('/api/prescriptions/review-queue?hospital=' + encodeURIComponent(state.me.hospital_id))).items || []; } catch (e) {
        if (!alive()) return;
        $('#queue').innerHTML = '<div class="card error-box">' + esc(e.full) + '</div>';
        return;
      }
      const ctxs = await Promise.all(items.map((p) => rxContext(p.id)));
      if (!alive()) return;
      $('#queue').innerHTML = items.length ? '<div class="cards">' + items.map((p, i) => rxCard(p, ctxs[i], '#/review/' + encodeURIComponent(p.id))).join('') + '</div>' : empty('暂无待审处方', '医生提交审核的处方会自动出现在这里');
      $('#q-updated').textContent = '更新于 ' + fmtClock(new Date().toISOString());
    };
    await load();
    // Pharmacists have no message stream: the queue refreshes itself.
    const t = setInterval(load, 15000);
    state.cleanup.push(() => clearInterval(t));
  }

  async function viewReview(id, alive) {
    view.innerHTML = '<div class="loading">正在加载…</div>';
    const [p, ctx] = await Promise.all([get('/api/prescriptions/' + encodeURIComponent(id)), rxContext(id)]);
    let hist = [];
    try { hist = (await get('/api/prescriptions/' + encodeURIComponent(id) + '/history')).items || []; } catch (e) { hist = []; }
    // Earlier versions' rejection reasons (the series).
    let prev = null;
    if (p.previous_id) { try { prev = await get('/api/prescriptions/' + encodeURIComponent(p.previous_id)); } catch (e) { prev = null; } }
    if (!alive()) return;
    const pt = ctx.patient || {};
    const dr = ctx.doctor || {};
    const signed = p.signed_at && (p.signature || p.doc_sm3);
    let html = '<div class="page-head"><a class="back" href="#/home">‹ 待审处方</a><h2>处方审核</h2><span class="status s-' + esc(p.status) + '" id="review-status">' + esc(p.status_label) + '</span></div>' +
      '<div class="card rx-paper"><div class="rx-title">互联网医院处方笺</div>' +
      '<div class="grid2"><div>患者：<b>' + esc(pt.name || p.patient_id) + '</b> ' + esc([pt.gender, pt.age ? pt.age + '岁' : ''].filter(Boolean).join(' ')) + '</div>' +
      '<div>开具医生：<b>' + esc(dr.name || p.doctor_id) + '</b> ' + esc(dr.title || '') + ' ' + esc(dr.department || '') + '</div>' +
      '<div>开具时间：' + esc(fmtTime(p.created_at)) + '</div><div>提交审核：' + esc(fmtTime(p.submitted_at)) + '</div></div>' +
      '<p class="diag">诊断：<b>' + esc(p.diagnosis) + '</b></p>' + (p.note ? '<p>备注：' + esc(p.note) + '</p>' : '') +
      '<table class="table"><thead><tr><th>药品</th><th>规格</th><th>单次剂量</th><th>频次</th><th>天数</th><th>用法</th><th>数量</th><th>金额</th></tr></thead><tbody>' +
      (p.items || []).map((it) => '<tr><td><b>' + esc(it.name) + '</b></td><td>' + esc(it.spec) + '</td><td>' + esc(it.dose) + esc(it.dose_unit) + '</td><td>' + esc(it.frequency) + '</td><td>' + esc(it.days || '') + '</td><td>' + esc(it.route) + '</td><td>' + esc(it.quantity) + esc(it.unit) + '</td><td>¥' + yuan(it.amount_fen) + '</td></tr>').join('') +
      '</tbody></table><div class="rx-total">合计：<b>¥' + esc(p.total) + '</b></div>' +
      '<div class="sig ' + (signed ? 'ok' : 'bad') + '" id="sig-status">' + (signed ? '✓ 医生已电子签名　' + esc(fmtTime(p.signed_at)) + (p.doc_sm3 ? '<div class="muted small mono">文档摘要 SM3：' + esc(p.doc_sm3) + '</div>' : '') : '✗ 医生尚未电子签名') + '</div></div>';
    if (prev && prev.review_reason) html += '<div class="card reject-box">上一版（第 ' + esc(prev.revision) + ' 版）驳回理由：' + esc(prev.review_reason) + '</div>';
    if (p.status === 'under_review') {
      html += '<div class="card"><h3>审核</h3><label>驳回理由（驳回时必填，将退回给医生）<textarea id="reject-reason" rows="3" maxlength="500" placeholder="如：剂量偏大，请核对"></textarea></label>' +
        '<p class="form-error" id="review-error" hidden></p><div class="actions"><button class="btn danger" id="reject-btn">驳回</button><button class="btn primary" id="approve-btn">审核通过</button></div></div>';
    } else if (p.review_reason) html += '<div class="card reject-box">驳回理由：' + esc(p.review_reason) + '</div>';
    if (hist.length) html += '<div class="card"><h3>审核流程</h3>' + hist.map((e) => '<div class="hist-row"><span>' + esc(fmtTime(e.at)) + '</span><span>' + esc(statusText(e.from)) + ' → ' + esc(statusText(e.to)) + '</span>' + (e.reason ? '<span class="muted">' + esc(e.reason) + '</span>' : '') + '</div>').join('') + '</div>';
    view.innerHTML = html;
    const err = $('#review-error');
    const act = async (what, body) => {
      err.hidden = true;
      try {
        await post('/api/prescriptions/' + encodeURIComponent(id) + '/' + what, body);
        toast(what === 'approve' ? '已审核通过' : '已驳回，理由已退回医生');
        location.hash = '#/home';
      } catch (e) { err.textContent = e.full; err.hidden = false; }
    };
    const ap = $('#approve-btn');
    if (ap) {
      ap.onclick = () => act('approve');
      $('#reject-btn').onclick = () => {
        const reason = $('#reject-reason').value.trim();
        if (!reason) { err.textContent = '驳回处方须填写理由，理由将退回给医生'; err.hidden = false; $('#reject-reason').focus(); return; }
        act('reject', { reason });
      };
    }
  }
  function statusText(s) {
    return ({ '': '新建', draft: '草稿', signed: '已签名', under_review: '待审核', approved: '审核通过', rejected: '已驳回', paid: '已支付', sent_to_his: '已发送药房' })[s] || s;
  }

  async function viewReviewed(alive) {
    view.innerHTML = '<div class="page-head"><h2>审方记录</h2></div><div id="reviewed"><div class="loading">正在加载…</div></div>';
    let items;
    try { items = (await get('/doctor/api/reviewed')).items || []; } catch (e) {
      if (!alive()) return;
      $('#reviewed').innerHTML = '<div class="card error-box">' + esc(e.full) + '</div>';
      return;
    }
    const ctxs = await Promise.all(items.map((p) => rxContext(p.id)));
    if (!alive()) return;
    $('#reviewed').innerHTML = items.length ? '<div class="cards">' + items.map((p, i) => rxCard(p, ctxs[i], '#/review/' + encodeURIComponent(p.id)).replace('</a>', (p.review_reason ? '<p class="reject-line">驳回理由：' + esc(p.review_reason) + '</p>' : '') + '</a>')).join('') + '</div>' : empty('还没有审核过处方');
  }

  // ---------- boot ----------
  window.addEventListener('online', () => { $('#offline').hidden = true; if (isDoctor()) startFeed(); });
  window.addEventListener('offline', () => { $('#offline').hidden = false; });
  if (navigator.onLine === false) $('#offline').hidden = false;
  if ('serviceWorker' in navigator) {
    window.addEventListener('load', () => { navigator.serviceWorker.register('/doctor/sw.js', { scope: '/doctor/' }).catch(() => { /* the app works without it */ }); });
  }
  (async function boot() {
    try { await loadMe(); } catch (e) { view.innerHTML = '<div class="card error-box">' + esc(e.full || e.message) + '</div>'; return; }
    let want = location.hash;
    if (state.me) {
      startFeed();
      if (!want || want === '#/login') want = state.me.must_change ? '#/password' : '#/home';
    } else want = '#/login';
    // A changed hash renders through hashchange.
    if (want !== location.hash) location.hash = want; else render();
  })();
})();
