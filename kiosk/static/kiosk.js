/*
 * The kiosk page. Plain ES5 for old Android WebViews: var and function only,
 * XMLHttpRequest, callbacks, className instead of classList, no fetch,
 * promises, arrow functions, let, const or template literals (kiosk_test.go
 * checks for them).
 */
(function () {
  'use strict';

  var NETWORK_ERROR = '网络连接失败，请稍后再试或到人工窗口办理';
  var IDLE_WARN = 10; // seconds of countdown before going back to the start screen

  var body = document.body;
  var state = {
    device: body.getAttribute('data-state'),
    idle: parseInt(body.getAttribute('data-idle'), 10) || 60,
    voucher: body.getAttribute('data-voucher') === 'true',
    session: '',
    overview: null,
    screen: '',
    back: 'start',
    mode: '',
    input: '',
    pair: '',
    report: null,
    last: now(),
    printing: false,
    printBack: 'home',
    busy: false,
    selected: {}, // fee ids ticked on the fees screen
    scanFor: '', // 'pay' while the scan screen reads a voucher to pay with
    quote: null,
    pay: null, // the payment on the screen: {id, view, polling, deadline}
    paying: false // a payment screen that must not time out (waiting, printing)
  };

  function now() { return new Date().getTime(); }
  function $(id) { return document.getElementById(id); }

  function hasClass(el, c) { return (' ' + el.className + ' ').indexOf(' ' + c + ' ') >= 0; }
  function addClass(el, c) { if (!hasClass(el, c)) { el.className = (el.className ? el.className + ' ' : '') + c; } }
  function removeClass(el, c) {
    el.className = (' ' + el.className + ' ').replace(' ' + c + ' ', ' ').replace(/^\s+|\s+$/g, '');
  }
  function setText(el, s) { el.textContent = s === undefined || s === null ? '' : String(s); }
  function make(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    if (text !== undefined) { setText(el, text); }
    return el;
  }
  function clear(el) { while (el.firstChild) { el.removeChild(el.firstChild); } }
  function on(el, ev, fn) { el.addEventListener(ev, fn, false); }

  // ---- screens ----

  var screens = ['unpaired', 'disabled', 'start', 'input', 'scan', 'home', 'visits', 'fees', 'reports', 'report', 'reprint', 'printing',
    'payconfirm', 'payqr', 'payresult'];

  function show(name) {
    var i, el;
    for (i = 0; i < screens.length; i++) {
      el = $('screen-' + screens[i]);
      if (screens[i] === name) { addClass(el, 'active'); } else { removeClass(el, 'active'); }
    }
    state.screen = name;
    body.setAttribute('data-screen', name);
    hideCountdown();
    if (name === 'scan') {
      $('scan-input').value = '';
      $('scan-input').focus();
    }
  }

  // ---- requests ----

  function request(method, url, data, done) {
    var x = new XMLHttpRequest();
    x.open(method, url, true);
    x.setRequestHeader('X-Kiosk', '1');
    if (state.session) { x.setRequestHeader('X-Kiosk-Session', state.session); }
    if (data !== null) { x.setRequestHeader('Content-Type', 'application/json'); }
    x.timeout = 40000;
    x.onreadystatechange = function () {
      if (x.readyState !== 4) { return; }
      var res = null;
      try { res = JSON.parse(x.responseText); } catch (e) { res = null; }
      if (x.status >= 200 && x.status < 300) {
        done(null, res);
        return;
      }
      done({ status: x.status, code: res && res.code, message: (res && res.message) || NETWORK_ERROR }, res);
    };
    x.send(data === null ? null : JSON.stringify(data));
  }

  // failed handles what every screen handles alike and reports whether it did:
  // a kiosk that is no longer paired or enabled, and an expired session.
  function failed(err) {
    if (err.status === 403) {
      refreshStatus();
      return true;
    }
    if (err.status === 401) {
      reset();
      message(err.message);
      return true;
    }
    return false;
  }

  function message(text) {
    setText($('message-text'), text);
    addClass($('message'), 'open');
  }

  // ---- device state ----

  function applyStatus(st) {
    state.device = st.state;
    if (st.idle_seconds) { state.idle = st.idle_seconds; }
    state.voucher = !!st.voucher;
    if (st.name) { setText($('kiosk-name'), st.name + (st.location ? ' · ' + st.location : '')); }
    if (st.state === 'unpaired') {
      state.session = '';
      if (state.screen !== 'unpaired') { state.pair = ''; renderPair(); show('unpaired'); }
    } else if (st.state === 'disabled') {
      state.session = '';
      if (st.message) { setText($('disabled-message'), st.message); }
      show('disabled');
    } else if (state.screen === 'unpaired' || state.screen === 'disabled' || state.screen === '') {
      show('start');
    }
  }

  function refreshStatus() {
    request('GET', '/kiosk/api/status', null, function (err, st) {
      if (!err) { applyStatus(st); }
    });
  }

  // ---- pairing ----

  function renderPair() {
    var s = '', i;
    for (i = 0; i < 6; i++) { s += i < state.pair.length ? state.pair.charAt(i) + ' ' : '_ '; }
    setText($('pair-display'), s);
  }

  function pairKey(k) {
    setText($('pair-error'), '');
    if (k === 'back') { state.pair = state.pair.substring(0, state.pair.length - 1); }
    else if (k === 'clear') { state.pair = ''; }
    else if (state.pair.length < 6) { state.pair += k; }
    renderPair();
  }

  function pairSubmit() {
    if (state.pair.length !== 6) { setText($('pair-error'), '请输入 6 位配对码'); return; }
    if (state.busy) { return; }
    state.busy = true;
    request('POST', '/kiosk/api/pair', { code: state.pair }, function (err, st) {
      state.busy = false;
      state.pair = '';
      renderPair();
      if (err) { setText($('pair-error'), err.message); return; }
      applyStatus(st);
      show(st.state === 'ready' ? 'start' : st.state);
    });
  }

  // ---- identification ----

  var modes = {
    id_number: { title: '请输入身份证号码', max: 18, x: true },
    visit_no: { title: '请输入就诊号', max: 20, x: false }
  };

  function startInput(mode) {
    state.mode = mode;
    state.input = '';
    setText($('input-title'), modes[mode].title);
    $('key-x').disabled = !modes[mode].x;
    if (modes[mode].x) { removeClass($('key-x'), 'off'); } else { addClass($('key-x'), 'off'); }
    setText($('input-error'), '');
    renderInput();
    show('input');
  }

  function renderInput() {
    var v = state.input, s = v;
    if (state.mode === 'id_number') { // 6-8-4 groups, as printed on the card
      s = v.substring(0, 6);
      if (v.length > 6) { s += ' ' + v.substring(6, 14); }
      if (v.length > 14) { s += ' ' + v.substring(14); }
    }
    setText($('input-display'), s);
  }

  function inputKey(k) {
    setText($('input-error'), '');
    if (k === 'back') { state.input = state.input.substring(0, state.input.length - 1); }
    else if (k === 'clear') { state.input = ''; }
    else if (k === 'X' && (state.mode !== 'id_number' || state.input.length !== 17)) { return; }
    else if (state.input.length < modes[state.mode].max) { state.input += k; }
    renderInput();
  }

  function identify(method, value, errorEl) {
    if (state.busy) { return; }
    state.busy = true;
    setText(errorEl, '正在查询，请稍候…');
    request('POST', '/kiosk/api/identify', { method: method, value: value }, function (err, o) {
      state.busy = false;
      if (err) {
        if (!failed(err)) { setText(errorEl, err.message); }
        return;
      }
      setText(errorEl, '');
      state.input = '';
      enter(o);
    });
  }

  function inputSubmit() {
    if (state.input === '') {
      setText($('input-error'), state.mode === 'id_number' ? '请输入身份证号码' : '请输入就诊号');
      return;
    }
    identify(state.mode, state.input, $('input-error'));
  }

  function startScan() {
    state.scanFor = '';
    setText($('scan-error'), state.voucher ? '' : '医保电子凭证暂不可用，请使用身份证号或就诊号');
    show('scan');
  }

  // ---- the patient's screens ----

  function enter(o) {
    state.session = o.session;
    state.overview = o;
    if (o.idle_seconds) { state.idle = o.idle_seconds; }
    renderOverview();
    show('home');
  }

  function renderOverview() {
    var o = state.overview;
    setText($('patient-name'), o.patient.name);
    setText($('patient-sex'), o.patient.sex ? '（' + o.patient.sex + '）' : '');
    setText($('count-visits'), o.visits.length);
    setText($('fee-total'), o.fee_total);
    setText($('tile-fees-sub'), o.pay && o.fees.length ? '查看明细并缴费' : '查看费用明细');
    setText($('count-reports'), o.reports.length);
    setText($('count-tickets'), o.tickets.length);
    setText($('home-notice'), o.notice || '');
    renderVisits();
    renderFees();
    renderReports();
    renderTickets();
  }

  function row(parent, title, lines, buttonText, onPress, disabledText) {
    var item = make('div', 'item'), info = make('div', 'item-info'), i, b;
    info.appendChild(make('div', 'item-title', title));
    for (i = 0; i < lines.length; i++) {
      if (lines[i]) { info.appendChild(make('div', 'item-line', lines[i])); }
    }
    item.appendChild(info);
    if (buttonText) {
      b = make('button', 'item-button', buttonText);
      b.type = 'button';
      on(b, 'click', onPress);
      item.appendChild(b);
    } else if (disabledText) {
      item.appendChild(make('div', 'item-note', disabledText));
    }
    parent.appendChild(item);
    return item;
  }

  function renderVisits() {
    var list = $('visit-list'), o = state.overview, i;
    clear(list);
    if (o.visits.length === 0) { list.appendChild(make('div', 'empty', '您今天没有挂号记录')); return; }
    for (i = 0; i < o.visits.length; i++) {
      (function (v) {
        row(list, v.department + '　' + v.doctor,
          ['就诊时间 ' + v.time + (v.queue_no ? '　序号 ' + v.queue_no : ''),
            '就诊号 ' + v.visit_no + '　挂号费 ￥' + v.fee + '　' + v.status],
          v.printable ? '打印挂号凭条' : '', function () { print('registration', v.visit_no, 'visits'); },
          o.printer ? '' : '暂不能打印');
      })(o.visits[i]);
    }
  }

  function renderFees() {
    var tbody = $('fee-list'), o = state.overview, i, tr, f, kept = {};
    clear(tbody);
    if (o.pay) { removeClass($('screen-fees'), 'nopay'); } else { addClass($('screen-fees'), 'nopay'); }
    if (o.fees.length === 0) {
      tr = make('tr');
      tr.appendChild(make('td', 'empty', '没有待缴费用'));
      tr.firstChild.colSpan = 5;
      tbody.appendChild(tr);
    }
    for (i = 0; i < o.fees.length; i++) {
      f = o.fees[i];
      if (f.fee_id && (state.selected[f.fee_id] || state.selected[f.fee_id] === undefined)) { kept[f.fee_id] = true; }
      else if (f.fee_id) { kept[f.fee_id] = false; }
    }
    state.selected = kept;
    for (i = 0; i < o.fees.length; i++) {
      (function (f) {
        var tr = make('tr', 'fee-row'), box = make('span', 'box');
        tr.appendChild(make('td', 'check'));
        if (f.fee_id) { tr.firstChild.appendChild(box); }
        tr.appendChild(make('td', '', f.item));
        tr.appendChild(make('td', '', f.quantity));
        tr.appendChild(make('td', '', f.date));
        tr.appendChild(make('td', 'num', f.amount));
        tr.setAttribute('data-fee', f.fee_id || '');
        if (o.pay && f.fee_id) {
          on(tr, 'click', function () {
            state.selected[f.fee_id] = !state.selected[f.fee_id];
            feeSelection();
          });
        }
        tbody.appendChild(tr);
      })(o.fees[i]);
    }
    feeSelection();
    setText($('pay-hint'), o.fees.length ? o.pay_hint : '');
  }

  // yuan parses "12.30" into fen, and fen formats back: the page adds up
  // the ticked fees without floating point surprises.
  function fen(s) {
    var p = String(s).split('.'), c = p.length > 1 ? (p[1] + '00').substring(0, 2) : '00';
    return parseInt(p[0], 10) * 100 + parseInt(c, 10);
  }
  function yuan(n) {
    var c = n % 100;
    return Math.floor(n / 100) + '.' + (c < 10 ? '0' : '') + c;
  }

  function selectedFees() {
    var o = state.overview, out = [], i;
    for (i = 0; i < o.fees.length; i++) {
      if (o.fees[i].fee_id && state.selected[o.fees[i].fee_id]) { out.push(o.fees[i]); }
    }
    return out;
  }

  function feeSelection() {
    var o = state.overview, rows = $('fee-list').getElementsByTagName('tr'), i, id, sel, total = 0, n = 0, all = true, any = false;
    for (i = 0; i < rows.length; i++) {
      id = rows[i].getAttribute('data-fee');
      if (!id) { continue; }
      any = true;
      if (o.pay && state.selected[id]) { addClass(rows[i], 'sel'); } else { removeClass(rows[i], 'sel'); all = false; }
    }
    if (all && any) { addClass($('fee-all'), 'on'); } else { removeClass($('fee-all'), 'on'); }
    if (!o.pay) {
      setText($('fee-count'), '');
      setText($('fee-sum'), o.fee_total);
      return;
    }
    sel = selectedFees();
    for (i = 0; i < sel.length; i++) { total += fen(sel[i].amount); n++; }
    setText($('fee-count'), '已选 ' + n + ' 项　');
    setText($('fee-sum'), yuan(total));
    $('pay-insurance').disabled = n === 0;
    $('pay-self').disabled = n === 0;
  }

  function toggleAll() {
    var o = state.overview, i, all = hasClass($('fee-all'), 'on');
    if (!o || !o.pay) { return; }
    for (i = 0; i < o.fees.length; i++) {
      if (o.fees[i].fee_id) { state.selected[o.fees[i].fee_id] = !all; }
    }
    feeSelection();
  }

  function renderReports() {
    var list = $('report-list'), o = state.overview, i;
    clear(list);
    if (o.reports.length === 0) { list.appendChild(make('div', 'empty', '近 30 天没有检查检验报告')); return; }
    for (i = 0; i < o.reports.length; i++) {
      (function (r) {
        row(list, r.kind + '　' + r.name, [r.reported_at + '　' + (r.department || '') + '　' + (r.status || '')],
          '查看', function () { openReport(r); });
      })(o.reports[i]);
    }
  }

  function renderTickets() {
    var list = $('ticket-list'), o = state.overview, i;
    clear(list);
    if (o.tickets.length === 0) { list.appendChild(make('div', 'empty', '没有可补打的凭条')); return; }
    for (i = 0; i < o.tickets.length; i++) {
      (function (t) {
        row(list, t.title, ['打印时间 ' + t.printed], o.printer ? '补打' : '', function () { reprint(t.job_id); },
          o.printer ? '' : '暂不能打印');
      })(o.tickets[i]);
    }
  }

  function openReport(r) {
    var body = $('report-body'), table, tr, i, ob, head, cells, j;
    state.report = r;
    setText($('report-title'), r.kind + '报告　' + r.name);
    setText($('report-meta'), '报告时间 ' + r.reported_at + (r.department ? '　' + r.department : '') +
      (r.doctor ? '　报告医生 ' + r.doctor : '') + (r.status ? '　' + r.status : ''));
    clear(body);
    if (r.observations.length) {
      table = make('table', 'results');
      head = make('tr');
      cells = ['项目', '结果', '单位', '参考范围'];
      for (j = 0; j < cells.length; j++) { head.appendChild(make('th', '', cells[j])); }
      table.appendChild(head);
      for (i = 0; i < r.observations.length; i++) {
        ob = r.observations[i];
        tr = make('tr', ob.flag ? 'abnormal' : '');
        tr.appendChild(make('td', '', ob.name));
        tr.appendChild(make('td', 'value', ob.value + (ob.flag ? ' ' + ob.flag : '')));
        tr.appendChild(make('td', '', ob.units));
        tr.appendChild(make('td', '', ob.range));
        table.appendChild(tr);
      }
      body.appendChild(table);
    }
    if (r.conclusion) {
      body.appendChild(make('div', 'conclusion-title', '结论 / 印象'));
      body.appendChild(make('div', 'conclusion', r.conclusion));
    }
    $('report-print').disabled = !r.printable;
    setText($('report-print'), r.printable ? '打印报告' : (state.overview.printer ? '报告未审核，暂不能打印' : '暂不能打印'));
    show('report');
  }

  // ---- printing ----

  function print(kind, ref, back) {
    startPrint(back, 'POST', '/kiosk/api/print', { kind: kind, ref: ref });
  }

  function reprint(jobID) {
    startPrint('reprint', 'POST', '/kiosk/api/reprint', { job_id: jobID });
  }

  function startPrint(back, method, url, data) {
    if (state.busy) { return; }
    state.busy = true;
    state.printBack = back;
    printScreen('正在打印…', '请稍候，凭条将从下方出票口打出', false);
    request(method, url, data, function (err, res) {
      state.busy = false;
      if (err) {
        if (!failed(err)) { printScreen('未能打印', err.message, true); }
        return;
      }
      pollJob(res.job_id, now());
    });
  }

  function printScreen(title, detail, done) {
    setText($('print-title'), title);
    setText($('print-detail'), detail);
    state.printing = !done;
    if (done) {
      addClass($('print-spinner'), 'off');
      removeClass($('print-done'), 'off');
    } else {
      removeClass($('print-spinner'), 'off');
      addClass($('print-done'), 'off');
    }
    state.last = now();
    if (state.screen !== 'printing') { show('printing'); }
  }

  function pollJob(id, started) {
    request('GET', '/kiosk/api/jobs/' + encodeURIComponent(id), null, function (err, res) {
      if (state.screen !== 'printing' || !state.printing) { return; }
      if (err) {
        if (!failed(err)) { printScreen('未能确认打印结果', err.message, true); }
        return;
      }
      if (res.status === 'printed') {
        printScreen('打印完成', '请取走凭条', true);
        refreshOverview();
        return;
      }
      if (res.status === 'failed') {
        printScreen('打印失败', (res.message ? res.message + '，' : '') + '请到人工窗口打印', true);
        return;
      }
      if (now() - started > 60000) {
        printScreen('打印机暂时无法出票', (res.message ? res.message + '，' : '') + '请到人工窗口打印', true);
        return;
      }
      if (res.message) { setText($('print-detail'), '请稍候…（' + res.message + '）'); }
      setTimeout(function () { pollJob(id, started); }, 800);
    });
  }

  function refreshOverview() {
    request('GET', '/kiosk/api/overview', null, function (err, o) {
      if (!err && o && o.session === state.session) {
        state.overview = o;
        renderOverview();
      }
    });
  }

  // ---- paying ----

  function feeIDs() {
    var sel = selectedFees(), out = [], i;
    for (i = 0; i < sel.length; i++) { out.push(sel[i].fee_id); }
    return out;
  }

  function payInsurance() {
    if (selectedFees().length === 0) { return; }
    state.scanFor = 'pay';
    setText($('scan-error'), '');
    show('scan');
  }

  // quote asks for the split of the ticked fees: with the e-voucher the
  // insurance pre-settles them, without it everything is self-paid.
  function quote(ecToken, errorEl) {
    if (state.busy) { return; }
    state.busy = true;
    setText(errorEl, ecToken ? '正在进行医保预结算，请稍候…' : '正在计算费用，请稍候…');
    request('POST', '/kiosk/api/pay/quote', { fee_ids: feeIDs(), ec_token: ecToken }, function (err, q) {
      state.busy = false;
      if (errorEl === $('pay-hint')) { restoreHint(); } else { setText(errorEl, ''); }
      if (err) {
        if (failed(err)) { return; }
        if (err.status === 409) { refreshOverview(); show('fees'); }
        if (state.screen === 'scan') { setText(errorEl, err.message); } else { message(err.message); }
        return;
      }
      state.quote = q;
      renderQuote(q);
      show('payconfirm');
    });
  }

  function restoreHint() {
    var o = state.overview;
    setText($('pay-hint'), o && o.fees.length ? o.pay_hint : '');
  }

  function renderQuote(q) {
    setText($('confirm-what'), '费用合计（' + q.count + ' 项）');
    setText($('confirm-total'), q.total);
    setText($('confirm-fund'), q.fund);
    setText($('confirm-account'), q.account);
    setText($('confirm-cash'), q.cash);
    if (q.insurance) { removeClass($('confirm-fund-row'), 'off'); removeClass($('confirm-account-row'), 'off'); }
    else { addClass($('confirm-fund-row'), 'off'); addClass($('confirm-account-row'), 'off'); }
    setText($('confirm-note'), q.insurance ? (q.cash === '0.00' ? '医保结算后无需自付' : '医保结算后，自付部分请用微信扫码支付') : '全自费，请用微信扫码支付');
    setText($('confirm-error'), '');
  }

  function payConfirm() {
    if (state.busy || !state.quote) { return; }
    state.busy = true;
    state.paying = true;
    setText($('confirm-error'), '正在提交，请稍候…');
    request('POST', '/kiosk/api/pay', { quote_id: state.quote.quote_id }, function (err, v) {
      state.busy = false;
      if (err) {
        state.paying = false;
        if (!failed(err)) { setText($('confirm-error'), err.message); }
        return;
      }
      setText($('confirm-error'), '');
      state.quote = null;
      state.pay = { id: v.payment_id, view: null, qr: '', deadline: 0, polling: false };
      payUpdate(v);
    });
  }

  function payActive() {
    return !!(state.pay && state.pay.view && (state.pay.view.status === 'paying' || state.pay.view.status === 'cancelling'));
  }

  // payUpdate shows where the payment stands and polls until nothing more
  // will happen: paid and both tickets printed (or given up), or ended.
  function payUpdate(v) {
    var p = state.pay, cont = false;
    if (!p || v.payment_id !== p.id) { return; }
    p.view = v;
    if (v.status === 'paying' && v.qr) {
      if (p.qr !== v.qr) { p.qr = v.qr; $('pay-qr').src = v.qr; }
      p.deadline = now() + v.expires_in * 1000;
      setText($('qr-cash'), v.cash);
      setText($('qr-split'), v.fund !== '0.00' || v.account !== '0.00' ?
        '费用合计 ￥' + v.total + '，医保基金 ￥' + v.fund + '，个人账户 ￥' + v.account : '费用合计 ￥' + v.total);
      countdown();
      state.paying = true;
      if (state.screen !== 'payqr') { show('payqr'); }
      cont = true;
    } else if (v.status === 'paying' || v.status === 'cancelling') {
      resultScreen(v.status === 'cancelling' ? '正在取消支付…' : '正在确认支付结果…', v.message || '请稍候', false);
      // Waiting without a QR code (the insurance settling, the channel slow
      // to answer): the patient may give up rather than wait for the countdown.
      if (v.status === 'paying') { removeClass($('result-cancel'), 'off-none'); }
      cont = true;
    } else if (v.status === 'paid') {
      if (!p.paidAt) { p.paidAt = now(); }
      cont = paidScreen(v, now() - p.paidAt > 60000);
    } else {
      resultScreen(v.status === 'cancelled' ? '支付已取消' : '支付未完成', v.message || '', true, 'fail');
    }
    // The idle timeout waits while money or the receipt is under way; the
    // e-invoice is worth waiting for only while somebody is there.
    state.paying = v.status === 'paid' ? !!p.hold : cont;
    if (cont && !p.polling) {
      p.polling = true;
      setTimeout(function () { p.polling = false; pollPay(); }, 1500);
    }
  }

  // paidScreen shows a paid payment's prints and reports whether to keep
  // polling; late: the receipt has been waited for long enough.
  function paidScreen(v, late) {
    var receipt = '', invoice = '', more = true, done;
    switch (v.receipt) {
      case 'printed': receipt = '缴费凭条已打印，请取走'; break;
      case 'failed': receipt = '缴费凭条打印失败' + (v.receipt_message ? '（' + v.receipt_message + '）' : '') + '，请到人工窗口打印'; break;
      case 'none': receipt = v.receipt_message || '缴费凭条未能打印，请到人工窗口打印'; break;
      default:
        receipt = late ? '打印机暂时无法出票' + (v.receipt_message ? '（' + v.receipt_message + '）' : '') + '，请到人工窗口打印凭条' :
          '正在打印凭条…' + (v.receipt_message ? '（' + v.receipt_message + '）' : '');
    }
    switch (v.invoice) {
      case 'printed': invoice = '电子票据已打印'; break;
      case 'failed': invoice = '电子票据打印失败，请到人工窗口打印'; break;
      case 'none': invoice = v.invoice_message || '电子票据稍后可在手机上查看'; break;
      case 'pending': invoice = '正在打印电子票据…'; break;
      default: invoice = '正在开具电子票据…（也可点“完成”离开，电子票据稍后可在手机上查看）';
    }
    done = v.receipt === 'printed' || v.receipt === 'failed' || v.receipt === 'none' || late;
    state.pay.hold = !done;
    if (done && (v.invoice === 'printed' || v.invoice === 'failed' || v.invoice === 'none')) {
      more = false;
    }
    resultScreen('支付成功', '已支付 ￥' + v.total + '（医保基金 ￥' + v.fund + '，个人账户 ￥' + v.account + '，自付 ￥' + v.cash + '）',
      done, 'ok');
    setText($('result-receipt'), receipt);
    setText($('result-invoice'), invoice);
    return more;
  }

  function resultScreen(title, detail, done, mark) {
    addClass($('result-cancel'), 'off-none');
    setText($('result-title'), title);
    setText($('result-detail'), detail);
    if (!mark || mark === 'fail') {
      setText($('result-receipt'), '');
      setText($('result-invoice'), '');
    }
    $('result-done').disabled = !done;
    if (done) { removeClass($('result-done'), 'off-none'); } else { addClass($('result-done'), 'off-none'); }
    removeClass($('result-mark'), 'ok');
    removeClass($('result-mark'), 'fail');
    if (mark) {
      addClass($('result-spinner'), 'off');
      removeClass($('result-mark'), 'off');
      addClass($('result-mark'), mark);
      setText($('result-mark'), mark === 'ok' ? '✓' : '!');
    } else {
      removeClass($('result-spinner'), 'off');
      addClass($('result-mark'), 'off');
    }
    state.last = now();
    if (state.screen !== 'payresult') { show('payresult'); }
  }

  function pollPay() {
    var p = state.pay;
    if (!p || !state.session) { return; }
    request('GET', '/kiosk/api/pay/' + encodeURIComponent(p.id), null, function (err, v) {
      if (state.pay !== p) { return; }
      if (err) {
        if (failed(err)) { return; }
        // A lost answer: ask again; the server keeps the payment's state.
        if (!p.polling) {
          p.polling = true;
          setTimeout(function () { p.polling = false; pollPay(); }, 3000);
        }
        return;
      }
      payUpdate(v);
    });
  }

  function countdown() {
    var p = state.pay, left, m, sec;
    if (!p || state.screen !== 'payqr') { return; }
    left = Math.max(0, Math.ceil((p.deadline - now()) / 1000));
    m = Math.floor(left / 60);
    sec = left % 60;
    setText($('qr-countdown'), m + ':' + (sec < 10 ? '0' : '') + sec);
    if (left === 0) { payCancel('支付超时，正在取消…'); }
  }

  function payCancel(text) {
    var p = state.pay;
    if (!p || p.cancelling) { return; }
    p.cancelling = true;
    resultScreen(text || '正在取消支付…', '请稍候', false);
    request('POST', '/kiosk/api/pay/' + encodeURIComponent(p.id) + '/cancel', {}, function (err, v) {
      p.cancelling = false;
      if (state.pay !== p) { return; }
      if (err) {
        if (!failed(err)) { resultScreen('未能取消支付', err.message, true, 'fail'); }
        return;
      }
      payUpdate(v);
    });
  }

  function payDone() {
    state.pay = null;
    state.paying = false;
    state.selected = {};
    // Show the empty selection at once (buttons off) rather than the paid
    // one, until the fees read again select what is still unpaid.
    if (state.overview) { feeSelection(); }
    refreshOverview();
    show(state.session ? 'fees' : 'start');
  }

  // ---- leaving ----

  // reset goes back to the start screen and ends the patient's session.
  function reset() {
    if (state.pay && payActive()) {
      // The patient left with a payment open: nobody may pay its QR code later.
      request('POST', '/kiosk/api/pay/' + encodeURIComponent(state.pay.id) + '/cancel', {}, function () {});
    }
    state.pay = null;
    state.quote = null;
    state.paying = false;
    state.selected = {};
    state.scanFor = '';
    if (state.session) {
      request('POST', '/kiosk/api/logout', {}, function () {});
    }
    state.session = '';
    state.overview = null;
    state.report = null;
    state.input = '';
    state.printing = false;
    setText($('input-display'), '');
    setText($('input-error'), '');
    setText($('scan-error'), '');
    removeClass($('message'), 'open');
    if (state.device === 'ready') { show('start'); } else { refreshStatus(); }
  }

  // ---- idle timeout ----

  function touched() {
    state.last = now();
    if (hasClass($('countdown'), 'open')) { hideCountdown(); }
  }

  function hideCountdown() { removeClass($('countdown'), 'open'); }

  function tick() {
    // Beijing time (UTC+8, no summer time) whatever zone the device is set to.
    var d = new Date(now() + 8 * 3600 * 1000), hh = d.getUTCHours(), mm = d.getUTCMinutes(), left;
    setText($('clock'), (d.getUTCMonth() + 1) + '月' + d.getUTCDate() + '日 ' + (hh < 10 ? '0' : '') + hh + ':' + (mm < 10 ? '0' : '') + mm);
    if (state.screen === 'payqr') {
      countdown(); // the payment's own countdown replaces the idle timeout here
      return;
    }
    if (state.screen === 'unpaired' || state.screen === 'disabled' || state.screen === 'start' || state.printing || state.paying) {
      return;
    }
    left = Math.ceil(state.idle - (now() - state.last) / 1000);
    if (left <= 0) {
      reset();
      return;
    }
    if (left <= IDLE_WARN) {
      setText($('countdown-n'), left);
      addClass($('countdown'), 'open');
    }
  }

  // ---- wiring ----

  function keypad(id, fn) {
    on($(id), 'click', function (e) {
      var t = e.target;
      while (t && t !== this && !t.getAttribute('data-key')) { t = t.parentNode; }
      if (t && t.getAttribute && t.getAttribute('data-key') && !t.disabled) { fn(t.getAttribute('data-key')); }
    });
  }

  function wire() {
    var backs = document.querySelectorAll('button.back'), i;
    keypad('pair-keypad', pairKey);
    keypad('input-keypad', inputKey);
    on($('pair-submit'), 'click', pairSubmit);
    on($('by-id'), 'click', function () { startInput('id_number'); });
    on($('by-visit'), 'click', function () { startInput('visit_no'); });
    on($('by-voucher'), 'click', startScan);
    on($('input-back'), 'click', function () { show('start'); });
    on($('input-submit'), 'click', inputSubmit);
    on($('scan-back'), 'click', function () { show(state.scanFor === 'pay' && state.session ? 'fees' : 'start'); });
    on($('scan-input'), 'keydown', function (e) {
      var v;
      if (e.keyCode !== 13) { return; }
      e.preventDefault();
      v = $('scan-input').value;
      $('scan-input').value = '';
      if (state.scanFor === 'pay') {
        if (v.replace(/\s+/g, '') !== '') { quote(v, $('scan-error')); }
        return;
      }
      if (!state.voucher) { return; }
      identify('voucher', v, $('scan-error'));
    });
    on($('scan-input'), 'blur', function () {
      if (state.screen === 'scan') { setTimeout(function () { if (state.screen === 'scan') { $('scan-input').focus(); } }, 50); }
    });
    on($('tile-visits'), 'click', function () { show('visits'); });
    on($('tile-fees'), 'click', function () { show('fees'); });
    on($('fee-all-head'), 'click', toggleAll);
    on($('pay-insurance'), 'click', payInsurance);
    on($('pay-self'), 'click', function () { if (selectedFees().length) { quote('', $('pay-hint')); } });
    on($('confirm-back'), 'click', function () { state.quote = null; show('fees'); });
    on($('confirm-pay'), 'click', payConfirm);
    on($('qr-cancel'), 'click', function () { payCancel(); });
    on($('result-done'), 'click', payDone);
    on($('result-cancel'), 'click', function () { payCancel(); });
    on($('tile-reports'), 'click', function () { show('reports'); });
    on($('tile-reprint'), 'click', function () { show('reprint'); });
    for (i = 0; i < backs.length; i++) { on(backs[i], 'click', function () { show('home'); }); }
    on($('report-back'), 'click', function () { show('reports'); });
    on($('report-print'), 'click', function () { if (state.report) { print('report', state.report.report_no, 'report'); } });
    on($('print-done'), 'click', function () { state.printing = false; show(state.session ? state.printBack : 'start'); });
    on($('logout'), 'click', reset);
    on($('message-ok'), 'click', function () { removeClass($('message'), 'open'); });
    on($('countdown-stay'), 'click', touched);
    on(document, 'touchstart', touched);
    on(document, 'mousedown', touched);
    on(document, 'keydown', touched);
    // The context menu of a long press has nothing for a patient.
    on(document, 'contextmenu', function (e) { e.preventDefault(); });
  }

  wire();
  renderPair();
  applyStatus({ state: state.device, idle_seconds: state.idle, voucher: state.voucher });
  tick();
  setInterval(tick, 1000);
  // A kiosk disabled or re-paired in the console changes its screen within 30 s.
  setInterval(function () {
    if (state.screen === 'start' || state.screen === 'unpaired' || state.screen === 'disabled') { refreshStatus(); }
  }, 30000);
})();
