// The live SMS segment counter of the SMS content form. The server counts
// (messaging/sms.py, the same code delivery uses) and renders (messaging/rendering.py),
// so this file only asks and shows: the text as typed, and, once a customer is given
// in the "Count for a customer" box, the text rendered for that customer.
(function () {
  "use strict";

  const url = document.currentScript.dataset.segmentsUrl;
  const SELECTOR = 'textarea[name="text"], textarea[name$="-text"]';
  const CUSTOMER_BOX = "sms-counter-customer";
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

  function customerWanted() {
    const box = document.getElementById(CUSTOMER_BOX);
    return box ? box.value.trim() : "";
  }

  function line(parent, className, text) {
    const element = document.createElement("div");
    element.className = className;
    element.textContent = text;
    parent.appendChild(element);
    return element;
  }

  function show(output, report) {
    output.replaceChildren();
    line(output, "sms-segments-source", report.summary + " (as typed, before variables are filled in)");
    const rendered = report.for_customer;
    if (!rendered) {
      return;
    }
    if (rendered.error) {
      line(output, "sms-segments-customer errornote", rendered.error);
      return;
    }
    line(output, "sms-segments-customer", "For " + rendered.customer + ": " + rendered.summary);
    const text = line(output, "sms-segments-rendered", "");
    text.appendChild(document.createTextNode("Rendered: "));
    const quoted = document.createElement("q");
    quoted.textContent = rendered.text;
    text.appendChild(quoted);
    if (rendered.long_policy) {
      line(output, "sms-segments-policy", rendered.long_policy);
    }
  }

  function count(textarea) {
    const output = outputFor(textarea);
    const query = { text: textarea.value };
    const customer = customerWanted();
    if (customer) {
      query.customer = customer;
    }
    const request = fetch(url + "?" + new URLSearchParams(query), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    latest.set(textarea, request);
    request
      .then(function (response) {
        if (response.status === 403 && customer) {
          throw new Error("You may not see customers, so the text cannot be rendered for one.");
        }
        if (!response.ok) {
          throw new Error("The parts could not be counted: reload the page (are you still logged in?).");
        }
        return response.json();
      })
      .then(function (report) {
        if (latest.get(textarea) === request) {
          show(output, report);
        }
      })
      .catch(function (error) {
        if (latest.get(textarea) === request) {
          output.textContent = error.message;
        }
      });
  }

  function schedule(textarea) {
    clearTimeout(timers.get(textarea));
    timers.set(textarea, setTimeout(function () { count(textarea); }, DELAY_MS));
  }

  function countAll() {
    document.querySelectorAll(SELECTOR).forEach(function (textarea) {
      if (!textarea.name.includes("__prefix__")) {
        count(textarea);
      }
    });
  }

  let customerTimer = null;

  // Delegated, so variant rows added with "Add another" count too.
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches(SELECTOR)) {
      schedule(event.target);
    } else if (event.target.id === CUSTOMER_BOX) {
      clearTimeout(customerTimer);
      customerTimer = setTimeout(countAll, DELAY_MS);
    }
  });

  // Enter in the customer box counts again; it must not submit the content's form.
  document.addEventListener("keydown", function (event) {
    if (event.target.id === CUSTOMER_BOX && event.key === "Enter") {
      event.preventDefault();
      countAll();
    }
  });

  // The customer stays chosen across "Save and continue editing" (for this tab only).
  const REMEMBERED = "triggerhub.sms-counter-customer";

  function start() {
    const box = document.getElementById(CUSTOMER_BOX);
    if (box) {
      box.value = box.value || sessionStorage.getItem(REMEMBERED) || "";
      box.addEventListener("input", function () { sessionStorage.setItem(REMEMBERED, box.value); });
    }
    countAll();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
