export {
  type ComponentApi,
  ComponentError,
  type ComponentErrorCode,
  type ComponentOptions,
  component,
  NS_COMPONENT,
} from './component.js'
