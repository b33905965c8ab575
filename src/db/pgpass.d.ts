declare module 'pgpass';
