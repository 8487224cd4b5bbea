// The search page's preview: a click on a result loads the message beside the list without
// leaving the page (the link itself works without JavaScript: it reloads with ?sel=ID).
(function () {
  "use strict";
  var pane = document.getElementById("preview");
  var table = document.getElementById("results");
  if (!pane || !table) { return; }
  table.addEventListener("click", function (event) {
    var link = event.target.closest("a.pick");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
    event.preventDefault();
    fetch(link.dataset.preview, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : Promise.reject(answer.status); })
      .then(function (html) {
        pane.innerHTML = html;
        var rows = table.querySelectorAll("tr.selected");
        for (var i = 0; i < rows.length; i++) { rows[i].classList.remove("selected"); }
        link.closest("tr").classList.add("selected");
        history.replaceState(null, "", link.href);
      })
      .catch(function () { window.location.href = link.href; });
  });
}());
