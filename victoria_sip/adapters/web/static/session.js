// What every page behind the login shares: the CSRF token for state-changing requests, and logging out.
export const csrf = document.querySelector('meta[name="csrf"]').content;

export function send(method, path) {
  return fetch(path, { method, headers: { "X-CSRF-Token": csrf } });
}

document.getElementById("logout").addEventListener("click", async () => {
  await send("POST", "/api/logout");
  location.assign("/login");
});
