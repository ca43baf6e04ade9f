/* canteen: checks a Chinese ID number (GB 11643) while it is typed, as canteen/residents/id_numbers.py
   does on the server, which checks again. Used by the registration form; loads in Node for the tests. */
(function (root) {
  "use strict";

  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var CHECK_CHARS = "10X98765432";
  // first two digits of GB/T 2260 region codes: provinces, autonomous regions, municipalities
  var PROVINCES = ("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 " +
    "50 51 52 53 54 61 62 63 64 65 71 81 82").split(" ");
  var HMT_REGIONS = ["810000", "820000", "830000"];
  var ID_DOC_TYPES = ["resident_id_card", "hmt_residence_permit"];

  function checkCharacter(first17) {
    var sum = 0;
    for (var i = 0; i < 17; i++) sum += Number(first17.charAt(i)) * WEIGHTS[i];
    return CHECK_CHARS.charAt(sum % 11);
  }

  function ageOn(birth, today) {
    // completed years by calendar comparison (born 29 February: a year older on 1 March)
    var age = today.y - birth.y;
    if (today.m < birth.m || (today.m === birth.m && today.d < birth.d)) age -= 1;
    return age;
  }

  function isRealDate(y, m, d) {
    var leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
    var days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1];
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  /* Check `number` for `docType`. `today` is "YYYY-MM-DD" (the business date, from the server).
     Answers {status: "empty" | "typing" | "invalid" | "valid" | "not_checked", error, number, birthDate, sex, age}:
     "typing" while fewer than 18 characters have been typed; error is one of
     shape, hmt_region, province, date, implausible, check_digit. */
  function checkIdNumber(docType, number, today) {
    var value = String(number || "").replace(/\s+/g, "").toUpperCase();
    if (ID_DOC_TYPES.indexOf(docType) < 0) return { status: "not_checked", number: value };
    if (!value) return { status: "empty", number: value };
    if (value.length < 18 && /^\d*$/.test(value)) return { status: "typing", number: value };
    if (!/^\d{17}[\dX]$/.test(value)) return { status: "invalid", error: "shape", number: value };
    if (docType === "hmt_residence_permit") {
      if (HMT_REGIONS.indexOf(value.slice(0, 6)) < 0) return { status: "invalid", error: "hmt_region", number: value };
    } else if (PROVINCES.indexOf(value.slice(0, 2)) < 0) {
      return { status: "invalid", error: "province", number: value };
    }
    var y = Number(value.slice(6, 10)), m = Number(value.slice(10, 12)), d = Number(value.slice(12, 14));
    if (!isRealDate(y, m, d)) return { status: "invalid", error: "date", number: value };
    if (y < 1890) return { status: "invalid", error: "implausible", number: value };
    if (checkCharacter(value.slice(0, 17)) !== value.charAt(17)) {
      return { status: "invalid", error: "check_digit", number: value };
    }
    var result = {
      status: "valid",
      number: value,
      birthDate: y + "-" + pad(m) + "-" + pad(d),
      sex: Number(value.charAt(16)) % 2 ? "male" : "female",
      age: null
    };
    var t = /^(\d{4})-(\d{2})-(\d{2})$/.exec(today || "");
    if (t) result.age = ageOn({ y: y, m: m, d: d }, { y: Number(t[1]), m: Number(t[2]), d: Number(t[3]) });
    return result;
  }

  var api = { checkIdNumber: checkIdNumber, checkCharacter: checkCharacter };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
    return;
  }
  root.canteenIdCheck = api;

  /* The form: <form data-id-check data-today="YYYY-MM-DD" data-msg-...="...">, with the fields
     id_doc_type and id_number, an element [data-id-check-result] for the message, and
     [data-passport-only] blocks (birth date and sex are typed in for passports only). */
  function wire(form) {
    var docType = form.querySelector("[name=id_doc_type]");
    var number = form.querySelector("[name=id_number]");
    var output = form.querySelector("[data-id-check-result]");
    if (!docType || !number || !output) return;
    var minAge = Number(form.getAttribute("data-min-age") || "60");

    function message(name) {
      return form.getAttribute("data-msg-" + name) || "";
    }

    function fill(template, values) {
      return template.replace(/\{(\w+)\}/g, function (whole, key) {
        return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : whole;
      });
    }

    function update() {
      var passport = docType.value === "passport";
      form.querySelectorAll("[data-passport-only]").forEach(function (block) {
        block.hidden = !passport;
        block.querySelectorAll("input, select").forEach(function (input) {
          input.disabled = !passport;
        });
      });
      var result = checkIdNumber(docType.value, number.value, form.getAttribute("data-today"));
      output.classList.remove("id-check-ok", "id-check-error", "id-check-warn");
      number.removeAttribute("aria-invalid");
      if (result.status === "typing") {
        output.textContent = fill(message("typing"), { count: result.number.length });
      } else if (result.status === "invalid") {
        output.textContent = message(result.error.replace("_", "-"));
        output.classList.add("id-check-error");
        number.setAttribute("aria-invalid", "true");
      } else if (result.status === "valid") {
        var values = {
          birth_date: result.birthDate,
          sex: message(result.sex),
          age: result.age === null ? "?" : String(result.age)
        };
        var text = fill(message("valid"), values);
        if (result.age !== null && result.age < minAge) {
          text += " " + fill(message("too-young"), values);
          output.classList.add("id-check-warn");
        } else {
          output.classList.add("id-check-ok");
        }
        output.textContent = text;
      } else {
        output.textContent = "";
      }
    }

    docType.addEventListener("change", update);
    number.addEventListener("input", update);
    update();
  }

  if (typeof document !== "undefined") {
    document.querySelectorAll("form[data-id-check]").forEach(wire);
  }
})(this);
