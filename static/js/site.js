// What every page of the site shares: dismissable toasts, copy buttons, a question before a
// destructive form is sent, and a toast for the htmx responses that are not swapped into the
// page (a server error, a lost connection), so a failed request never passes without a word.
(function () {
  "use strict";

  function toast(text, kind) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var box = document.createElement("div");
    box.className = "toast toast-" + kind;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    var p = document.createElement("p");
    p.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-quiet btn-small";
    close.setAttribute("data-dismiss-toast", "");
    close.setAttribute("aria-label", "Dismiss this message");
    close.textContent = "×";
    box.append(p, close);
    region.append(box);
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var dismiss = target.closest("[data-dismiss-toast]");
    if (dismiss) {
      var box = dismiss.closest(".toast");
      if (box) box.remove();
      return;
    }
    var copy = target.closest("[data-copy-from]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy-from"));
      if (!source) return;
      var text = "value" in source ? source.value : source.textContent;
      var done = function () {
        copy.textContent = "Copied";
        copy.setAttribute("aria-live", "polite");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {
          source.select && source.select();
        });
      } else if (source.select) {
        source.select();
        document.execCommand("copy");
        done();
      }
    }
  });

  // A form that destroys something asks first: <form data-confirm="Remove bert?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var status = xhr ? xhr.status : 0;
    if (status >= 500) {
      toast("Something went wrong on the server (" + status + "); nothing was changed on this page. Try again, or reload.", "error");
    } else {
      toast("The request was refused (" + status + "). Reload the page and try again.", "error");
    }
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached; nothing was sent. Check the connection and try again.", "error");
  });
})();
