// The spec's status polling loop (its "Complete Workflow: Text-to-3D", step 4), as the frontend runs
// it on Node's own fetch: a poll every 2 s while the job waits or runs, here for a fixed number of
// polls. Prints what each poll got, and the errors of those that failed, as JSON.
const [base, jobId, token, polls] = process.argv.slice(2);
const results = [];

const pollStatus = async () => {
  try {
    const response = await fetch(`${base}/api/3d/status/${jobId}`, {
      headers: { "Authorization": `Bearer ${token}` },
    });
    const { job, queue } = await response.json();
    results.push({ code: response.status, status: job.status, position: queue.position });
  } catch (error) {
    results.push({ error: String(error.cause ?? error) });
  }
  if (results.length < Number(polls)) {
    setTimeout(pollStatus, 2000);
  } else {
    console.log(JSON.stringify(results));
  }
};

pollStatus();
