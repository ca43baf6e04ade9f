/* canteen: small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  // The user form: show only the scope field the chosen role needs (district or canteen).
  document.querySelectorAll("form[data-role-scope]").forEach(function (form) {
    var role = form.querySelector("select[name=role]");
    if (!role) return;
    function update() {
      form.querySelectorAll("[data-scope-for]").forEach(function (block) {
        block.hidden = block.getAttribute("data-scope-for").split(" ").indexOf(role.value) < 0;
      });
    }
    role.addEventListener("change", update);
    update();
  });

  // The new-canteen and new-resident forms: offer only the communities (and home canteens) of
  // the chosen district.
  document.querySelectorAll("form[data-district-communities]").forEach(function (form) {
    var district = form.querySelector("select[name=district_id]");
    var choices = form.querySelectorAll("select[name=community_id], select[name=home_canteen_id]");
    if (!district || !choices.length) return;
    function update() {
      var chosen = district.options[district.selectedIndex];
      var name = chosen ? chosen.text : "";
      choices.forEach(function (select) {
        select.querySelectorAll("optgroup").forEach(function (group) {
          var show = !district.value || group.label === name;
          group.hidden = !show;
          group.disabled = !show;
          if (!show && group.querySelector("option:checked")) select.value = "";
        });
      });
    }
    district.addEventListener("change", update);
    update();
  });

  // Resident searches go in the URL: a full ID number typed there is sent by the exact look-up
  // form (POST) instead, so it never lands in a web address, a browser history or a log.
  document.querySelectorAll("form[data-lookup-instead]").forEach(function (form) {
    var lookup = document.getElementById(form.getAttribute("data-lookup-instead"));
    var q = form.querySelector("[name=q]");
    if (!lookup || !q) return;
    form.addEventListener("submit", function (event) {
      var value = q.value.replace(/\s+/g, "");
      if (!/^(\d{17}[\dXx]|\d{15})$/.test(value)) return;
      event.preventDefault();
      lookup.querySelector("[name=number]").value = value;
      q.value = "";
      lookup.submit();
    });
  });
})();
