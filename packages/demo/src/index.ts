export { runLifecycle, formatStep, type LifecycleOptions, type LifecycleReport, type StepResult, type SubjectPi } from './lifecycle.js';
export { startMailReceiver, startWebhookReceiver, type Mail, type MailReceiver, type WebhookHit, type WebhookReceiver } from './receivers.js';
export { SmsInbox } from './sms.js';
