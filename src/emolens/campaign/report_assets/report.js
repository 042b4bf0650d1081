// Campaign report: legend buttons hide or show one emotion in the chart they belong to.
// No network, no library; the page is complete without this script.
(function () {
  "use strict";
  function toggle(button) {
    var box = button.closest("figure");
    if (!box) { return; }
    var key = button.getAttribute("data-series");
    var shown = button.getAttribute("aria-pressed") !== "false";
    var nodes = box.querySelectorAll("[data-series]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.getAttribute("data-series") !== key) { continue; }
      if (node.classList.contains("legend-item")) {
        node.setAttribute("aria-pressed", shown ? "false" : "true");
      } else {
        node.classList.toggle("hidden-series", shown);
      }
    }
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var button = target.closest(".legend-item");
    if (button) { toggle(button); }
  });
}());
