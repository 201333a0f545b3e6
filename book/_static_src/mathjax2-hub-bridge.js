// The ipywidgets HTML manager typesets widget labels with the MathJax 2 API
// (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])); this site runs MathJax 3.
// Bridge that one call to MathJax 3's typesetPromise once MathJax 3 has started.
(function () {
  function install() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function (cmd) {
          var el = cmd && cmd[2];
          if (el && window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise([el]).catch(function () {});
          }
        }
      };
    }
  }
  install();
  document.addEventListener("DOMContentLoaded", install);
})();
