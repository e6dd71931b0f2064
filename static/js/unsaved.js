// Unsaved changes: a form marked `data-guard-unsaved` asks before its changes are lost. Leaving
// the page (reload, closing the tab, a link, another form) asks first while the form differs
// from what the page loaded with; a refused form the server sent back (`data-unsaved="true"`)
// counts as changed from the start. A submit button with `data-confirm-unsaved` (finishing
// without saving) asks with its own question, and says "discard" to the server only when the
// answer is yes.
(function () {
  "use strict";

  var form = document.querySelector("form[data-guard-unsaved]");
  if (!form) return;

  function state() {
    var pairs = [];
    new FormData(form).forEach(function (value, name) {
      if (name === "csrfmiddlewaretoken" || name === "discard") return;
      pairs.push(name + "=" + (typeof value === "string" ? value : value.name));
    });
    return pairs.join("&");
  }

  var loaded = state();
  var leaving = false;
  var LEAVE = "You have unsaved corrections on this item. Leave without saving them?";

  function changed() {
    return form.dataset.unsaved === "true" || state() !== loaded;
  }

  window.addEventListener("beforeunload", function (event) {
    if (leaving || !changed()) return;
    event.preventDefault();
    event.returnValue = "";
  });

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.dataset.confirmUnsaved;
    if (question && changed()) {
      if (!window.confirm(question)) {
        event.preventDefault();
        return;
      }
      form.querySelector("input[type=hidden][name=discard]").value = "1";
    }
    leaving = true;
  });

  // Links and other forms of the page that navigate away (an htmx form stays on the page).
  document.addEventListener(
    "click",
    function (event) {
      var link = event.target.closest && event.target.closest("a[href]");
      if (!link || leaving || !changed()) return;
      if (link.target === "_blank" || event.ctrlKey || event.metaKey || event.shiftKey) return;
      var url = new URL(link.href, window.location.href);
      var here = window.location;
      if (url.hash && url.origin + url.pathname + url.search === here.origin + here.pathname + here.search) {
        return; // a place on this page
      }
      if (window.confirm(LEAVE)) {
        leaving = true;
      } else {
        event.preventDefault();
      }
    },
    true
  );

  document.addEventListener(
    "submit",
    function (event) {
      var other = event.target;
      if (other === form || other.hasAttribute("hx-post") || leaving || !changed()) return;
      if (window.confirm(LEAVE)) {
        leaving = true;
      } else {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );
})();
