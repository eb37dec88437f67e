// "All scopes" / "All events" switch the single choices off: a tiny progressive enhancement,
// the server decides the same way without it (the "all" box wins).
document.addEventListener("DOMContentLoaded", function () {
  [["scope_all", "input.scope"], ["event_all", "input.event"]].forEach(function (pair) {
    var all = document.getElementById(pair[0]);
    if (!all) return;
    var sync = function () {
      document.querySelectorAll(pair[1]).forEach(function (box) { box.disabled = all.checked; });
    };
    all.addEventListener("change", sync);
    sync();
  });
});
