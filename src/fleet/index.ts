/** The TinyFER fleet: protocol, connection, registry, commands, manager and virtual devices. */
export * from './protocol';
export * from './connection';
export * from './registry';
export * from './commands';
export * from './manager';
export * from './simulator';
export * from './homeassistant';
