export { type ClientOptions, createClient } from './client.js'
