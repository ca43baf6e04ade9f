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

  // The new-canteen form: offer only the communities of the chosen district.
  document.querySelectorAll("form[data-district-communities]").forEach(function (form) {
    var district = form.querySelector("select[name=district_id]");
    var community = form.querySelector("select[name=community_id]");
    if (!district || !community) return;
    function update() {
      var chosen = district.options[district.selectedIndex];
      var name = chosen ? chosen.text : "";
      community.querySelectorAll("optgroup").forEach(function (group) {
        var show = !district.value || group.label === name;
        group.hidden = !show;
        group.disabled = !show;
        if (!show && group.querySelector("option:checked")) community.value = "";
      });
    }
    district.addEventListener("change", update);
    update();
  });
})();
