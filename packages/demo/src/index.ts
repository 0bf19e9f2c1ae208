export { runLifecycle, formatStep, type LifecycleOptions, type StepResult } from './lifecycle.js';
export { startMailReceiver, startWebhookReceiver, type Mail, type MailReceiver, type WebhookHit, type WebhookReceiver } from './receivers.js';
export { SmsInbox } from './sms.js';
