// The browser client's only own script: every change a page makes is a call of the public API.
//
//  form[data-api]           JSON body from the fields, sent to data-api with data-method; a
//                           4xx shows its message next to the field it names; on success the
//                           page goes to data-then ("{id}" is the created object's id).
//  input[type=file][data-upload]
//                           in such a form, each chosen file is first streamed to /api/uploads
//                           (type data-upload-type) with a progress bar; the upload ids become
//                           the body's "files", or the one id its data-upload-field.
//  button[data-api-action]  one call (cancel, build, BLAST); data-then navigates, data-then-load
//                           reloads a fragment, else the page reloads once.
//  [data-sign-out]          ends the session.
"use strict";

function fieldValue(field) {
  if (field.dataset.type === "bool") return field.checked;
  if (field.dataset.type === "list") {
    return field.value.split(",").map((part) => part.trim()).filter(Boolean);
  }
  return field.value;
}

function formBody(form) {
  const body = {};
  for (const field of form.querySelectorAll("[name]")) {
    if (field.disabled) continue;
    const value = fieldValue(field);
    if (value === "" && !field.required) continue;
    body[field.name] = value;
  }
  return body;
}

function clearErrors(scope) {
  for (const slot of scope.querySelectorAll("[data-error-for]")) {
    slot.hidden = true;
    slot.textContent = "";
  }
  for (const field of scope.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

// Put each message beside the field it names; a message naming no field of the form goes to
// data-error-default's field, else to the form's own slot.
function showErrors(scope, response, fallbackField) {
  const fields = response.errors && typeof response.errors === "object" ? response.errors : {};
  let placed = false;
  let firstInvalid = null;
  for (const [name, messages] of Object.entries(fields)) {
    const key = name.replace(/^body\./, "").split(".")[0];
    const slot = scope.querySelector(`[data-error-for="${key}"]`);
    if (!slot) continue;
    slot.textContent = `${key.replace(/_/g, " ")}: ${[].concat(messages).join("; ")}`;
    slot.hidden = false;
    const field = scope.querySelector(`[name="${key}"]`);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", slot.id);
      firstInvalid = firstInvalid || field;
    }
    placed = true;
  }
  if (!placed) {
    const slot = scope.querySelector(`[data-error-for="${fallbackField || "form"}"]`) ||
      scope.querySelector('[data-error-for="form"]') || scope.querySelector("[data-error-for]");
    if (slot) {
      slot.textContent = response.message || "Something went wrong";
      slot.hidden = false;
      const field = fallbackField && scope.querySelector(`[name="${fallbackField}"]`);
      if (field) {
        field.setAttribute("aria-invalid", "true");
        firstInvalid = field;
      }
    } else {
      window.alert(response.message || "Something went wrong");
    }
  }
  if (firstInvalid) firstInvalid.focus();
}

async function callApi(method, url, body) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  let data = {};
  try {
    data = await response.json();
  } catch (_) {
    data = {};
  }
  return { ok: response.ok, status: response.status, data: data || {} };
}

// One file to /api/uploads, reporting progress on its <progress>; resolves to the upload's id.
function uploadFile(file, type, bar) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const query = new URLSearchParams({ name: file.name, type });
    request.open("POST", `/api/uploads?${query}`);
    request.setRequestHeader("Accept", "application/json");
    if (bar) {
      bar.hidden = false;
      bar.value = 0;
    }
    request.upload.addEventListener("progress", (event) => {
      if (bar && event.lengthComputable) bar.value = event.loaded / event.total;
    });
    request.addEventListener("load", () => {
      let data = {};
      try {
        data = JSON.parse(request.responseText);
      } catch (_) {
        data = { message: `Upload failed (${request.status})` };
      }
      if (request.status >= 200 && request.status < 300) {
        if (bar) bar.value = 1;
        resolve(data.id);
      } else {
        reject({ errors: { files: [`${file.name}: ${data.message || request.status}`] } });
      }
    });
    request.addEventListener("error", () => reject({ errors: { files: [`${file.name}: the upload was interrupted`] } }));
    request.send(file);
  });
}

// A file already uploaded by an earlier try of the same form is not sent again.
async function uploadChosenFiles(form) {
  const inputs = [...form.querySelectorAll("input[type=file][data-upload]")].filter((input) => input.files.length);
  const ids = [];
  for (const input of inputs) {
    const file = input.files[0];
    const key = `${file.name}:${file.size}:${file.lastModified}`;
    if (!input.uploaded || input.uploaded.key !== key) {
      const bar = document.getElementById(`${input.id}-progress`);
      input.uploaded = { key, id: await uploadFile(file, form.dataset.uploadType || "reads", bar) };
    }
    ids.push(input.uploaded.id);
  }
  return ids;
}

// Empty required fields, named before any file is uploaded (the API checks everything again).
function missingFields(form) {
  const errors = {};
  for (const field of form.querySelectorAll("[name][required]")) {
    if (!String(fieldValue(field)).trim()) errors[field.name] = ["must not be empty"];
  }
  const file = form.querySelector("input[type=file][data-upload][required]");
  if (file && !file.files.length) errors.files = ["choose a FASTQ file to upload"];
  return errors;
}

function goTo(template, data) {
  window.location.assign(template.replace("{id}", encodeURIComponent(data.id || "")));
}

async function submitApiForm(form) {
  clearErrors(form);
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const body = formBody(form);
    const missing = missingFields(form);
    if (Object.keys(missing).length) throw { errors: missing };
    if (form.querySelector("input[type=file][data-upload]")) {
      // "files" takes every upload's id (a sample's reads); another field takes the one file's id.
      const ids = await uploadChosenFiles(form);
      const field = form.dataset.uploadField || "files";
      if (field === "files") body.files = ids;
      else if (ids.length) body[field] = ids[0];
    }
    const result = await callApi(form.dataset.method || "POST", form.dataset.api, body);
    if (!result.ok) throw result.data;
    if (form.dataset.then) goTo(form.dataset.then, result.data);
    else window.location.reload();
  } catch (error) {
    showErrors(form, error && typeof error === "object" ? error : { message: String(error) }, form.dataset.errorDefault);
  } finally {
    if (button) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

async function runAction(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const scope = button.closest("form, section, td, div") || document.body;
  clearErrors(scope);
  try {
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    const result = await callApi(button.dataset.method || "POST", button.dataset.apiAction, body);
    if (!result.ok) throw result.data;
    if (button.dataset.then) goTo(button.dataset.then, result.data);
    else if (button.dataset.thenLoad && window.htmx) {
      await window.htmx.ajax("GET", button.dataset.loadUrl, { target: button.dataset.thenLoad, swap: "innerHTML" });
    } else if (!document.querySelector("[hx-trigger*=every]")) window.location.reload();
  } catch (error) {
    showErrors(scope, error || {}, "action");
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  submitApiForm(form);
});

document.addEventListener("click", async (event) => {
  const action = event.target.closest("button[data-api-action]");
  if (action) {
    event.preventDefault();
    runAction(action);
    return;
  }
  if (event.target.closest("[data-sign-out]")) {
    await callApi("POST", "/api/account/logout");
    window.location.assign("/login");
  }
});
