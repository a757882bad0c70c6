// The live SMS segment counter of the SMS content form. The server counts
// (messaging/sms.py, the same code delivery uses), so this file only asks and shows.
(function () {
  "use strict";

  const url = document.currentScript.dataset.segmentsUrl;
  const SELECTOR = 'textarea[name="text"], textarea[name$="-text"]';
  const DELAY_MS = 300;
  const timers = new WeakMap();
  const outputs = new WeakMap();
  const latest = new WeakMap(); // the newest request per field: older answers are ignored

  function outputFor(textarea) {
    let output = outputs.get(textarea);
    if (!output) {
      output = document.createElement("div");
      output.className = "help sms-segments";
      output.setAttribute("aria-live", "polite");
      textarea.insertAdjacentElement("afterend", output);
      outputs.set(textarea, output);
    }
    return output;
  }

  function count(textarea) {
    const output = outputFor(textarea);
    const request = fetch(url + "?" + new URLSearchParams({ text: textarea.value }), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    latest.set(textarea, request);
    request
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (report) {
        if (latest.get(textarea) === request) {
          output.textContent = report.summary + " (as typed, before variables are filled in)";
        }
      })
      .catch(function () {
        if (latest.get(textarea) === request) {
          output.textContent = "The parts could not be counted: reload the page (are you still logged in?).";
        }
      });
  }

  function schedule(textarea) {
    clearTimeout(timers.get(textarea));
    timers.set(textarea, setTimeout(function () { count(textarea); }, DELAY_MS));
  }

  // Delegated, so variant rows added with "Add another" count too.
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches(SELECTOR)) {
      schedule(event.target);
    }
  });

  function countAll() {
    document.querySelectorAll(SELECTOR).forEach(function (textarea) {
      if (!textarea.name.includes("__prefix__")) {
        count(textarea);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", countAll);
  } else {
    countAll();
  }
})();
