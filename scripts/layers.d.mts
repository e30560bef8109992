export declare const LAYERS: string[];
export declare const DRIVERS: string[];
