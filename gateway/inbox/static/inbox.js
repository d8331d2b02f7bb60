// Live updates: an element with data-live listens to that event stream and takes each event's HTML as its
// content (the server renders it, escaped, from the same template as the page). Without JavaScript the page
// is complete as served; reloading shows the same.
document.querySelectorAll("[data-live]").forEach((element) => {
  const source = new EventSource(element.dataset.live);
  source.addEventListener(element.dataset.event, (event) => {
    element.innerHTML = event.data;
    if (element.querySelector("[data-ended]")) source.close(); // the execution ended: nothing more will come
  });
});
