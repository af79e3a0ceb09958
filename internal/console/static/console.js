// Console behaviour that needs a script: confirm dialogs on dangerous buttons.
// Everything else works without JavaScript.
document.addEventListener('click', function (ev) {
  var b = ev.target.closest('[data-confirm]');
  if (b && b.dataset.confirm && !window.confirm(b.dataset.confirm)) {
    ev.preventDefault();
  }
});
