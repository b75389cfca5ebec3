'use strict';
// The one way the tests start a browser: Debian's chromium (scripts/setup.sh installs it, or
// $CHROMIUM) driven by puppeteer-core, headless, nothing downloaded.
const fs = require('node:fs');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Launch chromium; a page of `width` x `height` comes with it. Fails clearly when chromium is missing. */
async function launchChromium({ width = 1400, height = 1000 } = {}) {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
    const puppeteer = require('puppeteer-core');
    const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', `--window-size=${width},${height}`],
        protocolTimeout: 60000,
    });
    const page = await browser.newPage();
    await page.setViewport({ width, height });
    return { browser, page };
}

module.exports = { CHROMIUM, launchChromium };
