/* The counter page (meals/counter.html) and the print button of the cash-up page.

   Every meal is recorded through a queue kept in this browser's localStorage and sent to the
   server in batches (POST /meals/counter/batch, up to 500 meals, each with its own idempotency
   key). Online, the queue is sent at once; offline, meals wait and are sent when the network
   returns (the `online` event, and a retry every few seconds while anything waits). A batch sent
   twice (its answer lost) records nothing twice: the server replays the first answer per key.

   What this browser keeps: the queue (resident ids, keys and meal fields), the names of residents
   picked this session and the offline roster (sessionStorage), today's list for an offline reload
   (sessionStorage). Never an ID number or a phone: the server sends neither for keeping, and the
   free-text fields refuse them. */
(function () {
  "use strict";

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  var root = document.getElementById("counter");
  if (!root) return;

  var config = JSON.parse(document.getElementById("counter-config").textContent);
  var T = config.text;
  var L = config.labels;
  var csrfToken = root.getAttribute("data-csrf");
  var RETRY_MS = 5000;
  var QUEUE_PREFIX = "canteen.counter.queue.v1.user.";
  var QUEUE_KEY = QUEUE_PREFIX + config.user_id;
  var NAMES_KEY = "canteen.counter.names.v1";
  var ROSTER_KEY = "canteen.counter.roster.v1.canteen." + config.canteen_id;
  var TODAY_KEY = "canteen.counter.today.v1.canteen." + config.canteen_id;
  var PRICE_KEY = "canteen.counter.price.v1.canteen." + config.canteen_id + ".";
  var SW_CACHE = "canteen-counter-v1";
  // a run of 7+ digits (after dropping separators) is an ID or phone number: never kept or sent as free text
  var PERSONAL_NUMBER = /\d{7,}/;

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    q: $("counter-q"), results: $("counter-results"), searchState: $("counter-search-state"),
    summary: $("counter-summary"), name: $("summary-name"), meta: $("summary-meta"), facts: $("summary-facts"),
    diet: $("summary-diet"), money: $("summary-money"), warnings: $("summary-warnings"),
    slot: $("slot"), mode: $("mode"), price: $("price"), priceError: $("price-error"), payment: $("payment"),
    verification: $("verification"), attestField: $("attest-field"), attest: $("attest-reason"),
    attestError: $("attest-error"), collected: $("collected-by"), collectedError: $("collected-error"),
    record: $("record"), message: $("counter-message"), rows: $("today-rows"),
    state: $("connection-state"), queueCount: $("connection-queue"), others: $("other-accounts"),
    dialog: $("void-dialog"), voidForm: $("void-form"), voidWhat: $("void-what"), voidReason: $("void-reason"),
    voidError: $("void-error"), voidCancel: $("void-cancel")
  };

  var state = {
    results: [], resultsFor: null, active: -1, picked: null, preview: null,
    searchSeq: 0, previewSeq: 0, searchTimer: null, pickedFor: null, previewOffline: false,
    todayMeals: [], sending: {}, flushing: false, flushAgain: false, online: true, problem: null,
    voiding: null
  };

  // --- small helpers ------------------------------------------------------------------------
  function format(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (_m, name) {
      return values && values[name] !== undefined && values[name] !== null ? values[name] : "";
    });
  }

  function yuan(fen) {
    var sign = fen < 0 ? "-" : "";
    var abs = Math.abs(fen);
    var cents = abs % 100;
    return sign + Math.floor(abs / 100) + "." + (cents < 10 ? "0" : "") + cents;
  }

  // "15", "12.5", "12.50", "¥12" → fen as an integer, never through a float
  function parseYuan(text) {
    var match = /^\s*[¥￥]?\s*(\d{1,5})(?:\.(\d{1,2}))?\s*元?\s*$/.exec(text || "");
    if (!match) return null;
    var cents = match[2] ? (match[2] + "0").slice(0, 2) : "00";
    return parseInt(match[1], 10) * 100 + parseInt(cents, 10);
  }

  function node(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = text;
    return element;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // plain http on a LAN is not a secure context: randomUUID is missing, getRandomValues is not
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // business dates and times are Asia/Shanghai, whatever the tablet's own time zone
  function localParts(date) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: config.time_zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    }).formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    return parts;
  }
  function businessDate(date) { var p = localParts(date); return p.year + "-" + p.month + "-" + p.day; }
  function clockTime(date) { var p = localParts(date); return p.hour + ":" + p.minute; }

  function readJSON(storage, key, fallback) {
    try {
      var raw = storage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (error) {
      return fallback;
    }
  }
  function writeJSON(storage, key, value) {
    try { storage.setItem(key, JSON.stringify(value)); } catch (error) { /* full or disabled: memory only */ }
  }

  // --- the queue (localStorage, one per account: idempotency keys belong to an account) --------
  function loadQueue() { return readJSON(localStorage, QUEUE_KEY, []); }
  function saveQueue(queue) {
    if (queue.length) writeJSON(localStorage, QUEUE_KEY, queue);
    else localStorage.removeItem(QUEUE_KEY);
  }
  // read, change, write at once: another tab of the same counter may have changed the queue
  function updateQueue(change) {
    var queue = loadQueue();
    var changed = change(queue) || queue;
    saveQueue(changed);
    return changed;
  }

  function residentName(id) {
    var names = readJSON(sessionStorage, NAMES_KEY, {});
    if (names[id]) return names[id];
    var roster = readJSON(sessionStorage, ROSTER_KEY, null);
    var found = roster && roster.residents.filter(function (r) { return r.id === id; })[0];
    return found ? found.name : format(T.resident_number, { id: id });
  }
  function rememberName(resident) {
    var names = readJSON(sessionStorage, NAMES_KEY, {});
    names[resident.id] = resident.name;
    writeJSON(sessionStorage, NAMES_KEY, names);
  }

  // --- talking to the server --------------------------------------------------------------------
  function call(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken;
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") < 0) {
        // a login page or a proxy's error page: the server did not answer this request
        var failure = new Error("not JSON");
        failure.status = response.status;
        throw failure;
      }
      return response.json().then(function (data) { return { status: response.status, ok: response.ok, data: data }; });
    });
  }

  function setConnection(online, problem) {
    state.online = online;
    state.problem = problem || null;
    renderConnection();
  }

  function renderConnection() {
    var waiting = loadQueue().filter(function (e) { return e.state === "waiting"; }).length;
    el.state.textContent = state.problem || (state.online ? T.online : T.offline);
    el.state.className = "connection-state " + (state.problem || !state.online ? "connection-off" : "connection-on");
    el.queueCount.hidden = waiting === 0;
    el.queueCount.textContent = format(T.waiting_count, { count: waiting });
    var others = 0;
    for (var i = 0; i < localStorage.length; i += 1) {
      var key = localStorage.key(i);
      if (key && key.indexOf(QUEUE_PREFIX) === 0 && key !== QUEUE_KEY) others += readJSON(localStorage, key, []).length;
    }
    el.others.hidden = others === 0;
    el.others.textContent = format(T.other_account, { count: others });
  }

  function failureProblem(error) {
    if (error && error.status === 401) return L.errors.unauthorized;
    if (error && error.status === 400) return L.errors.csrf_failed;
    if (error && error.status) return T.server_error;
    return null; // the network itself: plain offline
  }

  // no answer at all is the network (offline); an answer that is not JSON is the server's problem
  function noteFailure(error) {
    setConnection(Boolean(error && error.status), failureProblem(error));
  }

  // --- search -----------------------------------------------------------------------------------
  function scheduleSearch() {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(function () { search(el.q.value); }, 200);
  }

  function search(text) {
    clearTimeout(state.searchTimer);
    var q = text.trim();
    var seq = ++state.searchSeq;
    if (!q) { showResults([], null); el.searchState.textContent = ""; return Promise.resolve([]); }
    el.searchState.textContent = T.searching;
    var local = function () {
      if (seq !== state.searchSeq) return [];
      var found = searchRoster(q);
      el.searchState.textContent = T.searching_offline + (found.length === 0 && /^\d{3,5}[\dXx]$/.test(q) ? " " + T.tail_needs_network : "");
      showResults(found, q);
      return found;
    };
    if (navigator.onLine === false) return Promise.resolve(local());
    return call("POST", config.urls.search, { q: q }).then(function (answer) {
      if (seq !== state.searchSeq) return [];
      if (!answer.ok) {
        el.searchState.textContent = answer.data.message || "";
        showResults([], q);
        return [];
      }
      setConnection(true);
      el.searchState.textContent = answer.data.residents.length ? "" : T.no_one_found;
      showResults(answer.data.residents, q);
      return answer.data.residents;
    }, function (error) {
      noteFailure(error);
      return local();
    });
  }

  // the roster kept for offline: card number (exact), name, pinyin or initials (prefix)
  function searchRoster(q) {
    var roster = readJSON(sessionStorage, ROSTER_KEY, null);
    if (!roster) return [];
    var lower = q.toLowerCase().replace(/\s+/g, "");
    var upper = q.toUpperCase().replace(/\s+/g, "");
    var cards = [], names = [];
    roster.residents.forEach(function (r) {
      if (r.card_no && r.card_no.toUpperCase() === upper) cards.push(r);
      else if (r.name.indexOf(q) === 0 || (/^[a-z]+$/.test(lower) && (r.pinyin.indexOf(lower) === 0 || r.initials.indexOf(lower) === 0))) names.push(r);
    });
    return cards.concat(names).slice(0, 12);
  }

  function showResults(residents, forQuery) {
    state.results = residents;
    state.resultsFor = forQuery;
    state.active = residents.length ? 0 : -1;
    el.results.textContent = "";
    residents.forEach(function (resident, index) {
      var item = node("li", "counter-result");
      item.id = "counter-result-" + index;
      item.setAttribute("role", "option");
      item.appendChild(node("span", "counter-result-name", resident.name));
      var details = [];
      if (resident.card_no) details.push(resident.card_no);
      if (resident.id_number_masked) details.push(resident.id_number_masked);
      if (resident.age !== undefined) details.push(format(T.age, { age: resident.age }));
      item.appendChild(node("span", "counter-result-meta", details.join(" · ")));
      if (!resident.active) item.classList.add("resident-inactive");
      item.addEventListener("mousedown", function (event) { event.preventDefault(); });
      item.addEventListener("click", function () { pick(resident); el.q.focus(); });
      el.results.appendChild(item);
    });
    el.results.hidden = residents.length === 0;
    el.q.setAttribute("aria-expanded", residents.length ? "true" : "false");
    highlight();
  }

  function highlight() {
    Array.prototype.forEach.call(el.results.children, function (item, index) {
      item.setAttribute("aria-selected", index === state.active ? "true" : "false");
    });
    if (state.active >= 0) {
      el.q.setAttribute("aria-activedescendant", "counter-result-" + state.active);
      el.results.children[state.active].scrollIntoView({ block: "nearest" });
    } else {
      el.q.removeAttribute("aria-activedescendant");
    }
  }

  // --- the picked resident ------------------------------------------------------------------------
  function pick(resident) {
    state.picked = resident;
    state.preview = null;
    rememberName(resident);
    showResults([], null);
    el.searchState.textContent = "";
    el.q.value = resident.name;
    state.pickedFor = el.q.value;
    el.record.disabled = false;
    renderSummary();
    refreshPreview();
  }

  function unpick() {
    state.picked = null;
    state.preview = null;
    el.summary.hidden = true;
    el.record.disabled = true;
  }

  function fact(label, value) {
    el.facts.appendChild(node("dt", null, label));
    var dd = node("dd", null, null);
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
    el.facts.appendChild(dd);
  }

  function badges(labels, className) {
    var span = node("span");
    labels.forEach(function (label) { span.appendChild(node("span", "badge " + className, label)); span.appendChild(document.createTextNode(" ")); });
    if (!labels.length) span.textContent = "—";
    return span;
  }

  function renderSummary() {
    var r = state.picked;
    if (!r) { el.summary.hidden = true; return; }
    el.summary.hidden = false;
    el.summary.classList.toggle("has-allergens", r.allergens.length > 0);
    el.summary.classList.toggle("resident-inactive", !r.active);
    el.name.textContent = r.name;
    el.meta.textContent = r.age !== undefined ? format(T.age, { age: r.age }) : "";
    el.facts.textContent = "";
    if (r.id_number_masked) fact(T.id_number, r.id_number_masked);
    fact(T.card, r.card_no || "—");
    fact(T.categories_today, badges(r.categories.map(function (c) { return c.label; }), "badge-category"));
    if (r.delivery_registered) fact(T.delivery_registered, "✓");
    el.diet.textContent = "";
    if (r.allergens.length) {
      var allergies = node("p", "allergens");
      allergies.appendChild(node("strong", null, T.allergies + " "));
      allergies.appendChild(badges(r.allergens, "badge-allergen"));
      el.diet.appendChild(allergies);
    }
    if (r.restrictions.length) {
      var diet = node("p", "restrictions");
      diet.appendChild(node("strong", null, T.diet + " "));
      diet.appendChild(badges(r.restrictions, "badge-diet"));
      el.diet.appendChild(diet);
    }
    if (r.diet_notes) el.diet.appendChild(node("p", "diet-notes", r.diet_notes));
    if (!r.allergens.length && !r.restrictions.length && !r.diet_notes) el.diet.appendChild(node("p", "muted", T.no_diet));
    renderPreview();
  }

  function renderPreview() {
    var p = state.preview;
    var r = state.picked;
    el.money.textContent = "";
    el.warnings.textContent = "";
    if (!r) return;
    var warnings = [];
    if (!r.active) warnings.push(T.not_active);
    if (p) {
      var money = node("dl", "counter-figures");
      [[T.price, p.price_fen], [T.subsidy, p.subsidy_fen], [T.copay, p.copay_fen]].forEach(function (pair) {
        var box = node("div", "counter-figure");
        box.appendChild(node("dt", null, pair[0]));
        box.appendChild(node("dd", null, "¥" + yuan(pair[1])));
        money.appendChild(box);
      });
      el.money.appendChild(money);
      if (p.already_recorded) {
        warnings.push(format(T.already_recorded, {
          slot: L.slot[p.already_recorded.slot] || p.already_recorded.slot, canteen: p.already_recorded.canteen_name
        }));
      }
      p.warnings.forEach(function (w) { warnings.push(w.message); });
    } else if (state.previewOffline) {
      el.money.appendChild(node("p", "muted", T.decided_when_sent));
    }
    if (el.mode.value === "delivery" && !r.delivery_registered && !(p && p.warnings.some(function (w) { return w.code === "not_registered_for_delivery"; }))) {
      warnings.push(L.warnings.not_registered_for_delivery);
    }
    warnings.forEach(function (text) { el.warnings.appendChild(node("li", "flash flash-warning", text)); });
  }

  function refreshPreview() {
    var r = state.picked;
    if (!r) return;
    var price = parseYuan(el.price.value);
    state.preview = null;
    state.previewOffline = false;
    if (price === null) { renderPreview(); return; }
    var seq = ++state.previewSeq;
    var query = new URLSearchParams({
      canteen_id: config.canteen_id, resident_id: r.id, slot: el.slot.value, mode: el.mode.value, price_fen: price
    });
    call("GET", config.urls.preview + "?" + query.toString()).then(function (answer) {
      if (seq !== state.previewSeq || state.picked !== r) return;
      if (answer.ok) state.preview = Object.assign({ price_fen: price }, answer.data);
      renderPreview();
    }, function () {
      if (seq !== state.previewSeq) return;
      state.previewOffline = true;
      renderPreview();
    });
  }

  // --- recording ---------------------------------------------------------------------------------
  function fieldError(input, box, message) {
    box.hidden = !message;
    box.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    return !message;
  }

  function freeText(input, box) {
    var value = input.value.trim();
    var ok = fieldError(input, box, PERSONAL_NUMBER.test(value.replace(/[\s\-()（）]/g, "")) ? T.no_personal_numbers : null);
    return ok ? value : null;
  }

  function record() {
    var r = state.picked;
    if (!r) { say(T.pick_first, "warning"); el.q.focus(); return; }
    var price = parseYuan(el.price.value);
    if (!fieldError(el.price, el.priceError, price === null ? T.price_required : null)) { el.price.focus(); return; }
    var attested = el.verification.value === "staff_attested";
    var attestReason = attested ? freeText(el.attest, el.attestError) : "";
    if (attestReason === null) { el.attest.focus(); return; }
    if (attested && !fieldError(el.attest, el.attestError, attestReason ? null : T.attest_reason_required)) { el.attest.focus(); return; }
    var collectedBy = freeText(el.collected, el.collectedError);
    if (collectedBy === null) { el.collected.focus(); return; }
    var now = new Date();
    var entry = {
      key: newKey(),
      state: "waiting",
      queued_at: now.toISOString(),
      // exactly the fields of POST /api/v1/meals: the resident's internal id, never an ID number
      body: {
        resident_id: r.id,
        canteen_id: config.canteen_id,
        served_on: businessDate(now),
        served_at: now.toISOString(),
        slot: el.slot.value,
        mode: el.mode.value,
        price_fen: price,
        payment_method: el.payment.value,
        verification: el.verification.value,
        attest_reason: attestReason,
        collected_by: collectedBy
      }
    };
    updateQueue(function (queue) { queue.push(entry); });
    writeJSON(localStorage, PRICE_KEY + el.slot.value, el.price.value.trim());
    say(format(T.queued_as, { name: r.name }), "info");
    clearCounter();
    renderToday();
    flush();
  }

  function clearCounter() {
    clearTimeout(state.searchTimer);
    state.searchSeq += 1;
    el.q.value = "";
    showResults([], null);
    el.searchState.textContent = "";
    unpick();
    el.verification.value = "card";
    el.attest.value = "";
    el.collected.value = "";
    el.attestField.hidden = true;
    fieldError(el.attest, el.attestError, null);
    fieldError(el.collected, el.collectedError, null);
    el.q.focus();
  }

  function say(text, kind) {
    el.message.textContent = text;
    el.message.className = "counter-message flash flash-" + (kind || "info");
  }

  // --- sending the queue --------------------------------------------------------------------------
  function flush() {
    if (state.flushing) { state.flushAgain = true; return Promise.resolve(); }
    var waiting = loadQueue().filter(function (e) { return e.state === "waiting"; }).slice(0, config.batch_limit);
    if (!waiting.length) { renderConnection(); return Promise.resolve(); }
    state.flushing = true;
    waiting.forEach(function (e) { state.sending[e.key] = true; });
    renderToday();
    var items = waiting.map(function (e) { return Object.assign({ idempotency_key: e.key }, e.body); });
    return call("POST", config.urls.batch, { items: items }).then(function (answer) {
      if (!answer.ok) {
        // the whole batch was refused (a session that ended, a malformed batch): keep every meal
        setConnection(true, answer.status === 401 ? L.errors.unauthorized : (answer.data.message || T.server_error));
        return;
      }
      setConnection(true);
      applyResults(answer.data.results);
      loadToday(); // and what the canteen's other counters recorded meanwhile
    }, function (error) {
      noteFailure(error);
    }).then(function () {
      state.flushing = false;
      state.sending = {};
      renderToday();
      renderConnection();
      if (state.flushAgain) { state.flushAgain = false; flush(); }
    });
  }

  function applyResults(results) {
    var byKey = {};
    results.forEach(function (result) { if (result.idempotency_key) byKey[result.idempotency_key] = result; });
    var last = null;
    updateQueue(function (queue) {
      return queue.filter(function (entry) {
        var result = byKey[entry.key];
        if (!result) return true;
        if (result.status === "created" || result.status === "replayed") {
          upsertMeal(result.meal);
          last = { ok: true, meal: result.meal };
          return false; // recorded: it leaves the queue
        }
        if (result.error && result.error.code === "idempotency_in_flight") return true; // still being recorded: retry
        entry.state = "refused";
        entry.error = result.error || { code: "refused" };
        last = { ok: false, entry: entry };
        return true;
      });
    });
    saveToday();
    if (last && last.ok) {
      say(format(T.recorded_as, { name: last.meal.resident_name, subsidy: yuan(last.meal.subsidy_fen), copay: yuan(last.meal.copay_fen) }), "success");
    } else if (last) {
      say(format(T.refused_as, { name: residentName(last.entry.body.resident_id), reason: errorText(last.entry.error) }), "error");
    }
  }

  function errorText(error) {
    if (!error) return "";
    var template = L.errors[error.code];
    if (error.code === "meal_already_recorded") {
      return format(template, { slot: L.slot[error.slot] || error.slot || "", canteen: error.canteen_name || "" });
    }
    if (error.code === "validation_error" && error.errors) {
      return template + " " + format(T.field_errors, { fields: Object.keys(error.errors).join(", ") });
    }
    return template || format(T.refused_generic, { code: error.code });
  }

  // --- today's list -------------------------------------------------------------------------------
  function upsertMeal(meal) {
    for (var i = 0; i < state.todayMeals.length; i += 1) {
      if (state.todayMeals[i].id === meal.id) { state.todayMeals[i] = meal; return; }
    }
    state.todayMeals.unshift(meal);
  }

  // what an offline reload needs to show the list: no free text (reasons, who collected)
  function saveToday() {
    var kept = state.todayMeals.map(function (m) {
      return {
        id: m.id, resident_id: m.resident_id, resident_name: m.resident_name, served_at: m.served_at,
        recorded_at: m.recorded_at, slot: m.slot, mode: m.mode, price_fen: m.price_fen, subsidy_fen: m.subsidy_fen,
        copay_fen: m.copay_fen, payment_method: m.payment_method, status: m.status, warnings: []
      };
    });
    writeJSON(sessionStorage, TODAY_KEY, { date: businessDate(new Date()), meals: kept });
  }

  function loadToday() {
    return call("GET", config.urls.today).then(function (answer) {
      if (!answer.ok) return;
      state.todayMeals = answer.data.meals;
      saveToday();
      renderToday();
    }, function () {
      var kept = readJSON(sessionStorage, TODAY_KEY, null);
      if (kept && kept.date === businessDate(new Date())) { state.todayMeals = kept.meals; renderToday(); }
    });
  }

  function loadRoster() {
    return call("GET", config.urls.roster).then(function (answer) {
      if (answer.ok) writeJSON(sessionStorage, ROSTER_KEY, answer.data);
    }, function () { /* offline: the copy kept this session, if any */ });
  }

  function cell(row, text, className) { var td = node("td", className, text); row.appendChild(td); return td; }

  // the slot, and the mode when it is not the usual dine-in
  function mealText(meal) {
    var slot = L.slot[meal.slot] || meal.slot;
    return meal.mode === "dine_in" ? slot : slot + " · " + (L.mode[meal.mode] || meal.mode);
  }

  function statusBadge(kind, text) { return node("span", "badge counter-status counter-status-" + kind, text); }

  function renderToday() {
    el.rows.textContent = "";
    var queue = loadQueue();
    queue.slice().reverse().forEach(function (entry) {
      var b = entry.body;
      var row = node("tr", "counter-row counter-row-" + entry.state);
      row.setAttribute("data-key", entry.key);
      cell(row, clockTime(new Date(b.served_at)));
      cell(row, residentName(b.resident_id));
      cell(row, mealText(b));
      cell(row, yuan(b.price_fen), "num");
      cell(row, "—", "num");
      cell(row, "—", "num");
      var status = cell(row, null);
      var actions = cell(row, null, "actions");
      if (entry.state === "refused") {
        status.appendChild(statusBadge("refused", T.status_refused));
        status.appendChild(node("span", "counter-error", errorText(entry.error)));
        var dismiss = node("button", "button button-quiet", T.dismiss);
        dismiss.type = "button";
        dismiss.addEventListener("click", function () { removeEntry(entry.key); });
        actions.appendChild(dismiss);
      } else if (state.sending[entry.key]) {
        status.appendChild(statusBadge("sending", T.status_sending));
      } else {
        status.appendChild(statusBadge("waiting", T.status_waiting));
        var remove = node("button", "button button-quiet", T.remove);
        remove.type = "button";
        remove.addEventListener("click", function () {
          if (window.confirm(T.remove_confirm)) removeEntry(entry.key);
        });
        actions.appendChild(remove);
      }
      el.rows.appendChild(row);
    });
    state.todayMeals.forEach(function (meal) {
      var row = node("tr", "counter-row counter-row-" + (meal.status === "void" ? "void" : "recorded"));
      row.setAttribute("data-meal-id", meal.id);
      cell(row, clockTime(new Date(meal.served_at || meal.recorded_at)));
      cell(row, meal.resident_name);
      cell(row, mealText(meal));
      cell(row, yuan(meal.price_fen), "num");
      cell(row, yuan(meal.subsidy_fen), "num");
      cell(row, yuan(meal.copay_fen), "num");
      var status = cell(row, null);
      var actions = cell(row, null, "actions");
      if (meal.status === "void") {
        status.appendChild(statusBadge("void", T.status_void));
        if (meal.void_reason) status.appendChild(node("span", "counter-error", meal.void_reason));
      } else {
        status.appendChild(statusBadge("recorded", T.status_recorded));
        status.appendChild(node("span", "muted", " " + (L.payment[meal.payment_method] || meal.payment_method)));
        (meal.warnings || []).forEach(function (w) {
          if (L.warnings[w.code]) status.appendChild(node("span", "counter-warning", L.warnings[w.code]));
        });
        var voidButton = node("button", "button button-danger", T.void);
        voidButton.type = "button";
        voidButton.addEventListener("click", function () { openVoid(meal); });
        actions.appendChild(voidButton);
      }
      el.rows.appendChild(row);
    });
    if (!el.rows.children.length) {
      var empty = node("tr");
      var td = node("td", "muted", T.none_today);
      td.colSpan = 8;
      empty.appendChild(td);
      el.rows.appendChild(empty);
    }
    renderConnection();
  }

  function removeEntry(key) {
    if (state.sending[key]) return; // on its way: the server's answer decides
    updateQueue(function (queue) { return queue.filter(function (e) { return e.key !== key; }); });
    renderToday();
    el.q.focus();
  }

  // --- voids --------------------------------------------------------------------------------------
  function openVoid(meal) {
    state.voiding = meal;
    el.voidWhat.textContent = meal.resident_name + " · " + (L.slot[meal.slot] || meal.slot) + " · ¥" + yuan(meal.price_fen);
    el.voidReason.value = "";
    fieldError(el.voidReason, el.voidError, null);
    el.dialog.showModal();
    el.voidReason.focus();
  }

  function closeVoid() {
    state.voiding = null;
    if (el.dialog.open) el.dialog.close();
    el.q.focus();
  }

  el.voidForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var meal = state.voiding;
    if (!meal) return;
    var reason = freeText(el.voidReason, el.voidError);
    if (reason === null) return;
    if (!reason) { fieldError(el.voidReason, el.voidError, T.void_reason_required); return; }
    call("POST", config.urls.void.replace("{id}", meal.id), { reason: reason }).then(function (answer) {
      if (!answer.ok) { fieldError(el.voidReason, el.voidError, errorText(answer.data) || answer.data.message); return; }
      upsertMeal(answer.data);
      saveToday();
      renderToday();
      say(format(T.voided, { name: meal.resident_name }), "success");
      closeVoid();
    }, function (error) {
      fieldError(el.voidReason, el.voidError, failureProblem(error) || T.void_needs_network);
    });
  });
  el.voidCancel.addEventListener("click", closeVoid);
  el.dialog.addEventListener("close", function () { if (state.voiding) closeVoid(); });

  // --- the keyboard flow: type, Enter / arrows to pick, Enter to record, Escape to clear ----------
  el.q.addEventListener("input", function () {
    if (state.picked && el.q.value !== state.pickedFor) unpick();
    scheduleSearch();
  });

  el.q.addEventListener("keydown", function (event) {
    var count = state.results.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!count) return;
      event.preventDefault();
      state.active = (state.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      highlight();
    } else if (event.key === "Escape") {
      event.preventDefault();
      clearCounter();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (state.picked && el.q.value === state.pickedFor) { record(); return; }
      var q = el.q.value.trim();
      if (count && state.resultsFor === q) { pick(state.results[Math.max(state.active, 0)]); return; }
      // typed faster than the search (a card reader ends with Enter): search now; one match is picked
      search(el.q.value).then(function (found) {
        if (found.length === 1 && el.q.value.trim() === q) pick(found[0]);
      });
    }
  });

  el.record.addEventListener("click", function () { record(); if (!state.picked) el.q.focus(); });

  // Enter in the reason or "collected by" field records, as Enter in the search box does
  [el.attest, el.collected].forEach(function (input) {
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault();
      if (state.picked) record(); else el.q.focus();
    });
  });

  el.verification.addEventListener("change", function () {
    el.attestField.hidden = el.verification.value !== "staff_attested";
    if (!el.attestField.hidden) el.attest.focus();
  });

  el.slot.addEventListener("change", function () {
    var remembered = readJSON(localStorage, PRICE_KEY + el.slot.value, null);
    if (remembered) el.price.value = remembered;
    refreshPreview();
  });
  el.mode.addEventListener("change", refreshPreview);
  el.price.addEventListener("change", function () {
    fieldError(el.price, el.priceError, parseYuan(el.price.value) === null && el.price.value.trim() ? T.price_required : null);
    refreshPreview();
  });
  el.price.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); el.price.dispatchEvent(new Event("change")); el.q.focus(); }
  });

  // --- the network coming and going ---------------------------------------------------------------
  window.addEventListener("online", function () {
    setConnection(true);
    flush();
    loadToday();
    loadRoster();
  });
  window.addEventListener("offline", function () { setConnection(false); });
  window.addEventListener("storage", function (event) {
    if (event.key === QUEUE_KEY) renderToday(); // another tab of this counter changed the queue
  });
  setInterval(function () {
    if (loadQueue().some(function (e) { return e.state === "waiting"; })) flush();
  }, RETRY_MS);

  // the service worker keeps a copy of this page for an offline reload (secure contexts only)
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register(config.urls.worker).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () {
      if (navigator.onLine === false || !window.caches) return;
      return caches.open(SW_CACHE).then(function (cache) {
        return cache.addAll([window.location.href].concat(config.urls.assets));
      }).then(function () { root.setAttribute("data-offline-ready", "true"); });
    }).catch(function () { /* no offline copy: the page still works while online */ });
  }

  // --- start ----------------------------------------------------------------------------------------
  var rememberedPrice = readJSON(localStorage, PRICE_KEY + el.slot.value, null);
  if (rememberedPrice) el.price.value = rememberedPrice;
  setConnection(navigator.onLine !== false);
  renderToday();
  loadToday();
  loadRoster();
  flush();
  el.q.focus();
})();
