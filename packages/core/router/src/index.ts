export {
  type Handler,
  type IqHandler,
  type RouteContext,
  type RouteFilter,
  type RouterApi,
  router,
} from './router.js'
