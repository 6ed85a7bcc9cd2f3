// Drives Debian's Chromium through the portal for tests/integration/portal.rs, which starts the
// real server, prepares the data and reads what this script writes. Every step has a timeout:
// a browser waiting for a certificate choice, or a page that never loads, fails the step.
//
//   node scenario.js CONFIG.json RESULT.json
//
// CONFIG: { url, employer: {pfx, passphrase}, prosecutor: {cert, key}, staffFile, check: {docNumber,
//           name}, shots, downloads }
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const STEP_MS = 20000;
const [configPath, resultPath] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const result = { steps: [], urls: [], cookies: [], storage: [] };

function step(name, run) {
  return Promise.race([
    run(),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`step "${name}" timed out`)), STEP_MS)),
  ]).then((value) => {
    result.steps.push(name);
    return value;
  });
}

async function context(browser, who) {
  const options = { ignoreHTTPSErrors: true, locale: 'zh-CN', viewport: { width: 1280, height: 900 } };
  if (who) {
    // The employer logs in with the PKCS#12 file `certs issue --p12` writes, as a browser imports it.
    options.clientCertificates = [who.pfx
      ? { origin: config.url, pfxPath: who.pfx, passphrase: who.passphrase }
      : { origin: config.url, certPath: who.cert, keyPath: who.key }];
  }
  const ctx = await browser.newContext(options);
  ctx.setDefaultTimeout(STEP_MS);
  ctx.on('request', (request) => result.urls.push(request.url()));
  return ctx;
}

async function evidence(ctx, page) {
  result.cookies.push(...(await ctx.cookies()));
  result.storage.push(await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })));
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(config.shots, name), fullPage: true });
}

async function main() {
  const browser = await step('launch', () => chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  }));
  try {
    // A browser without a certificate sees the explanation and nothing else.
    const anonymous = await context(browser, null);
    const bare = await anonymous.newPage();
    const refused = await step('no certificate', () => bare.goto(`${config.url}/check`));
    result.noCertStatus = refused.status();
    result.noCertText = await bare.locator('body').innerText();
    result.noCertForms = await bare.locator('form').count();
    await shot(bare, 'portal-no-certificate.png');
    await anonymous.close();

    const employer = await context(browser, config.employer);
    const page = await employer.newPage();
    await step('home', () => page.goto(`${config.url}/`));
    result.homeText = await page.locator('main').innerText();

    // One pre-hire check.
    await step('check form', () => page.goto(`${config.url}/check`));
    await shot(page, 'portal-check.png');
    await page.selectOption('select[name=doc_type]', 'cn-id');
    await page.fill('input[name=doc_number]', config.check.docNumber);
    await page.fill('input[name=name]', config.check.name);
    await page.fill('input[name=consent_ref]', 'CONSENT-2026-001');
    await step('check submit', () => Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]));
    result.checkOutcome = await page.locator('section.answer').getAttribute('data-outcome');
    result.checkReceipt = await page.locator('code.receipt').innerText();
    result.checkUrl = page.url();
    await shot(page, 'portal-check-result.png');

    // A GB18030 staff file with Chinese headers, and its results file.
    await step('staff form', () => page.goto(`${config.url}/staff`));
    await page.setInputFiles('input[name=file]', config.staffFile);
    await page.fill('input[name=consent_ref]', 'CONSENT-2026-001');
    await step('staff upload', () => Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]));
    result.staffRows = await page.locator('#rows').innerText();
    result.staffProgress = await page.locator('p.progress-line').last().innerText();
    await shot(page, 'portal-staff-results.png');
    const download = await step('download', () => Promise.all([page.waitForEvent('download'), page.click('#download')]));
    const saved = path.join(config.downloads, download[0].suggestedFilename());
    await download[0].saveAs(saved);
    result.resultsFile = saved;

    // The alert raised for a member on the roster, acknowledged.
    await step('alerts', () => page.goto(`${config.url}/alerts`));
    result.alertsBefore = await page.locator('form.ack').count();
    await shot(page, 'portal-alerts.png');
    await page.selectOption('form.ack select[name=action]', { index: 0 });
    await page.fill('form.ack input[name=note]', '已暂停其工作');
    await step('acknowledge', () => Promise.all([page.waitForNavigation(), page.click('form.ack button')]));
    result.alertsAfter = await page.locator('form.ack').count();
    result.acknowledged = await page.locator('span.acked').count();

    await step('roster', () => page.goto(`${config.url}/roster`));
    await shot(page, 'portal-roster.png');
    await evidence(employer, page);
    await employer.close();

    // A prosecutor opens the dashboard and a unit's evidence.
    const prosecutor = await context(browser, config.prosecutor);
    const board = await prosecutor.newPage();
    await step('dashboard', () => board.goto(`${config.url}/oversight`));
    result.dashboardUnits = await board.locator('#units').innerText();
    await shot(board, 'portal-oversight.png');
    await step('unit evidence', () => Promise.all([
      board.waitForNavigation(),
      board.click(`tr[data-uscc="${config.employerUscc}"] a.unit`),
    ]));
    result.unitUscc = await board.locator('#uscc').innerText();
    result.unitEvidenceRows = await board.locator('table.audit tbody tr').count();
    result.unitText = await board.locator('main').innerText();
    await shot(board, 'portal-unit-evidence.png');
    await step('audit', () => board.goto(`${config.url}/audit?lang=en`));
    result.auditVerified = await board.locator('#verify').getAttribute('class');
    await shot(board, 'portal-audit-en.png');
    await evidence(prosecutor, board);
    await prosecutor.close();
  } finally {
    await browser.close();
  }
}

main()
  .then(() => {
    fs.writeFileSync(resultPath, JSON.stringify(result, null, 1));
  })
  .catch((error) => {
    result.error = String(error && error.stack || error);
    fs.writeFileSync(resultPath, JSON.stringify(result, null, 1));
    process.exitCode = 1;
  });
